# Transcribed from the tutorial; only the host line differs.
# The tutorial's TCP hello client (lesson "tcp协议下的socket", client端, port 8898).
# The server address comes from env TUTORIAL_HOST (default '127.0.0.1'),
# so this unmodified client can target the TAP device or a board.
import socket
sk = socket.socket()  # 创建客户套接字
sk.connect((__import__('os').environ.get('TUTORIAL_HOST', '127.0.0.1'),8898))  # 尝试连接服务器
sk.send(b'hello!')
ret = sk.recv(1024)  # 对话(发送/接收)
print(ret)
sk.close()  # 关闭客户套接字
