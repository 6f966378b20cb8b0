# The chapter's Greeter client (section 6.6.4) with its printed defects corrected.
# Every change is marked "FIX"; run `python -m lessons.chapter.greeter_client`.
import os
import grpc
from dns import resolver
from dns.exception import DNSException

# FIX: the stubs generated from Greeter.proto (compiled once for the workbench, in mesh/pb)
from mesh.pb import greeter_pb2 as Greeter_pb2
from mesh.pb import greeter_pb2_grpc as Greeter_pb2_grpc

# 连接consul服务，作为dns服务器
consul_resolver = resolver.Resolver()
# FIX: Consul's DNS port is 8600 (the chapter printed 8900); the workbench may say where its registry is.
consul_resolver.port = int(os.environ.get("CONSUL_DNS_PORT", 8600))
consul_resolver.nameservers=["127.0.0.1"]

def get_ip_port(server_name):
    '''查询出可用的一个ip，和端口'''  # FIX: the docstring must be indented like the body
    try:
        # FIX: dnspython 2 renamed query() to resolve()
        dnsanswer = consul_resolver.resolve('{}.service.consul'.format(server_name), "A")
        dnsanswer_srv = consul_resolver.resolve("{}.service.consul".format(server_name), "SRV")
    except DNSException:
        return None, None
    return dnsanswer[0].address, dnsanswer_srv[0].port

def get_ip_port_from_srv(server_name):
    '''FIX: take the address and the port from the same SRV record.

    Consul shuffles every answer, so A[0] and SRV[0] of two separate queries can belong to two
    different instances. An SRV record names its target, whose address comes in the same answer.
    '''
    try:
        answer = consul_resolver.resolve("{}.service.consul".format(server_name), "SRV")
    except DNSException:
        return None, None
    srv = answer[0]
    for rrset in answer.response.additional:
        if rrset.name == srv.target:
            return rrset[0].address, srv.port
    return None, None

if __name__ == '__main__':
    ip, port = get_ip_port("greeter_server")

    with grpc.insecure_channel('{}:{}'.format(ip, port)) as channel:
        stub = Greeter_pb2_grpc.GreeterStub(channel)  # FIX: the generated stub is GreeterStub
        response = stub.SayHello(Greeter_pb2.HelloRequest(name = 'Jason'))
        print("Greeter client received: {}, {}, {}, {}".format(response.id, response.name, response.age, response.title))
