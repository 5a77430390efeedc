# Transcribed from the tutorial; only the host line differs.
# The tutorial's UDP hello client (lesson "udp协议下的socket", client端, port 9000).
# The server address comes from env TUTORIAL_HOST (default '127.0.0.1'),
# so this unmodified client can target the TAP device or a board.
import socket
ip_port=(__import__('os').environ.get('TUTORIAL_HOST', '127.0.0.1'),9000)
udp_sk=socket.socket(type=socket.SOCK_DGRAM)
udp_sk.sendto(b'hello',ip_port)
back_msg,addr=udp_sk.recvfrom(1024)
print(back_msg.decode('utf-8'),addr)
