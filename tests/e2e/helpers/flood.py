"""Flood the daemon with run requests over the raw protocol, one connection each, as fast as
it answers: argv[1] the socket, argv[2] how many seconds, argv[3] the size of the one argument
(bytes). The command is /usr/bin/true. Prints one JSON object: how many requests, and how
many answers of each type (an error by its kind)."""
import json, os, socket, struct, sys, time

sock, seconds, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
req = json.dumps({"type": "run", "argv": ["/usr/bin/true", "x" * size], "env": []}).encode()
frame = struct.pack(">I", len(req)) + req
null = os.open("/dev/null", os.O_RDWR)
root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
answers, sent = {}, 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(sock)
        socket.send_fds(s, [frame], [null, null, null, root])
        sent += 1
        head = s.recv(4, socket.MSG_WAITALL)
        n = struct.unpack(">I", head)[0] if len(head) == 4 else 0
        reply = json.loads(s.recv(n, socket.MSG_WAITALL)) if n else {}
        what = reply.get("type", "none")
        if what == "error":
            what = reply.get("kind", "error")
    except OSError as e:
        what = type(e).__name__
    finally:
        s.close()
    answers[what] = answers.get(what, 0) + 1
print(json.dumps({"requests": sent, "answers": answers}))
