# The chapter's Greeter server (section 6.6.4) with its printed defects corrected.
# Every change is marked "FIX"; run `python -m lessons.chapter.greeter_server`.
import logging  # FIX: logging was used but not imported
import os
import time
import grpc
import consul
import json
from concurrent import futures

# FIX: the stubs generated from Greeter.proto (compiled once for the workbench, in mesh/pb)
from mesh.pb import greeter_pb2 as Greeter_pb2
from mesh.pb import greeter_pb2_grpc as Greeter_pb2_grpc

# The workbench may choose the port and check interval; the chapter's values are the defaults.
PORT = int(os.environ.get("GREETER_PORT", 12006))
INTERVAL = os.environ.get("GREETER_CHECK_INTERVAL", "10s")


class ServerInterface(Greeter_pb2_grpc.GreeterServicer):  # FIX: was ServerInterfaceServicer
    def SayHello(self, request, context):
        return Greeter_pb2.HelloReply(
            id = 1234,
            name = 'Jason',
            age = 24,  # FIX: the field is `age`; `int = 24` names no field
            title = ['apple', 'purple']
        )

def register(server_name, ip, port):
    c = consul.Consul() # 连接consul 服务器，默认是127.0.0.1，可用host参数指定host
    print("开始注册服务{}".format(server_name))
    check = consul.Check.tcp(ip, port, INTERVAL) # 健康检查的ip，端口，检查时间
    c.agent.service.register(server_name, '{}-{}-{}'.format(server_name, ip, port),
            address=ip, port=port, check=check) # 注册服务部分
    print("注册服务{}成功".format(server_name), flush=True)

def unregister(server_name, ip, port):
    c = consul.Consul()
    print("开始退出服务{}".format(server_name))
    c.agent.service.deregister('{}-{}-{}'.format(server_name, ip, port))

def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    # FIX: Greeter_pb2_grpc (not G_pb2_grpc) and the generated add_GreeterServicer_to_server
    Greeter_pb2_grpc.add_GreeterServicer_to_server(ServerInterface(), server)
    # FIX: listen on, and register, an address a health check and a client can dial (not 0.0.0.0)
    server.add_insecure_port('127.0.0.1:{}'.format(PORT))
    register("greeter_server", "127.0.0.1", PORT)
    server.start()
    try:
        # FIX: wait in gRPC's 0.1 s steps: a Ctrl-C that a gRPC thread caught never woke time.sleep
        server.wait_for_termination()
    except KeyboardInterrupt:
        unregister("greeter_server", "127.0.0.1", PORT)
        server.stop(0)

if __name__ == '__main__':
    logging.basicConfig()
    serve()
