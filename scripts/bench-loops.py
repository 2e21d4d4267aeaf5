# The workload loops of scripts/bench-agent.sh and scripts/bench-rules.sh:
#   python3 bench-loops.py exec|open|connect N DIR
# prints the loop's wall time in seconds.
import os, socket, subprocess, sys, time
kind, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
if kind == "exec":
    for _ in range(n):
        subprocess.run(["/bin/true"])
elif kind == "open":
    p = os.path.join(d, "f")
    for _ in range(n):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
elif kind == "connect":
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1024)
    addr = srv.getsockname()
    for _ in range(n):
        c = socket.create_connection(addr); a, _ = srv.accept(); a.close(); c.close()
print(time.perf_counter() - t)
