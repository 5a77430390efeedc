# Transcribed from the tutorial; only the host line differs.
# The tutorial's login client (exercise 1, port 8083): sends str({user: password}).
# The server address comes from env TUTORIAL_HOST (default '127.0.0.1'),
# so this unmodified client can target the TAP device or a board.
import socket

client = socket.socket()
server_ip = (__import__('os').environ.get('TUTORIAL_HOST', '127.0.0.1'),8083)
client.connect(server_ip)

k = input('请输入账户:')
v = input('请输入密码:')
# 存入字典,发送给服务端
msg = {k:v}
client.send(str(msg).encode('utf-8'))

from_server_msg = client.recv(1024)
print(from_server_msg.decode('utf-8'))
