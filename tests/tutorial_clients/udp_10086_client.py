# Transcribed from the tutorial; only the host line differs.
# The tutorial's UDP "10086" hotline client (exercise 2, port 8086).
# The server address comes from env TUTORIAL_HOST (default '127.0.0.1'),
# so this unmodified client can target the TAP device or a board.
# udp下复制多个以下代码即可实现多客户端

import socket

talk_client = socket.socket(type=socket.SOCK_DGRAM)
server_ip_port = (__import__('os').environ.get('TUTORIAL_HOST', '127.0.0.1'),8086)

while 1:
    msg = input('>>>')
    if msg == 'byebye':
        break
    msg = msg.encode('utf-8')
    talk_client.sendto(msg,server_ip_port)

    from_server_msg,addr = talk_client.recvfrom(1024)
    print('来自服务端>>>',from_server_msg.decode('utf-8'))

talk_client.close()
