# Transcribed from the tutorial; only the host line differs.
# The tutorial's turn-taking TCP chat client (port 8081): the server speaks
# first; the tutorial runs two copies of it ("再来一份即可"), both identical.
# The server address comes from env TUTORIAL_HOST (default '127.0.0.1'),
# so this unmodified client can target the TAP device or a board.
# Note `client_msg == 'byebye'` compares bytes with str and is never true,
# as in the tutorial: the session ends when the server says byebye.
import socket

client = socket.socket()
server_ip = (__import__('os').environ.get('TUTORIAL_HOST', '127.0.0.1'),8081)
client.connect(server_ip)

while 1:
    from_server_msg = client.recv(1024)
    from_server_msg = from_server_msg.decode('utf-8')
    print('来自服务器>>>',from_server_msg)
    if from_server_msg == 'byebye':
        break

    client_msg = input('>>>>> ')
    client_msg = client_msg.encode('utf-8')
    client.send(client_msg)
    if client_msg == 'byebye':
        break

client.close()
