"""A run request over the raw protocol with descriptors chosen by the test (the CLI always
passes good ones): argv[1] the socket, argv[2] how the cwd is opened ("read" or "opath"),
argv[3] the cwd, then optionally argv[4] a path passed as an O_PATH stdin. The command is
/usr/bin/pwd; its stdout and stderr go to a pipe. Prints every reply as one JSON line, then
"output: ..." with what the command wrote."""
import json, os, socket, struct, sys

sock, how, cwd = sys.argv[1:4]
flags = os.O_DIRECTORY | (os.O_PATH if how == "opath" else os.O_RDONLY)
cwd_fd = os.open(cwd, flags)
stdin = os.open(sys.argv[4], os.O_PATH) if len(sys.argv) > 4 else os.open("/dev/null", os.O_RDONLY)
r, w = os.pipe()
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sock)
b = json.dumps({"type": "run", "argv": ["/usr/bin/pwd"], "env": []}).encode()
socket.send_fds(s, [struct.pack(">I", len(b)) + b], [stdin, w, w, cwd_fd])
os.close(w)


def frame():
    h = s.recv(4, socket.MSG_WAITALL)
    if len(h) < 4:
        return None
    n = struct.unpack(">I", h)[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL))


while (reply := frame()) is not None:
    print(json.dumps(reply), flush=True)
    if reply.get("type") in ("exited", "error", "denied"):
        break
s.close()
os.set_blocking(r, False)
try:
    out = os.read(r, 4096).decode(errors="replace")
except BlockingIOError:
    out = ""
print("output:", out.strip())
