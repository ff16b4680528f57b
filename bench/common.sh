# Shell helpers the comparison scripts share (sourced, not run).

# CPU time a process has used so far, in clock ticks (utime + stime from /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# Waits for a server started with its output in file $1 to print "listening on 127.0.0.1:PORT"; prints PORT.
wait_for_listening() {
  local out=$1 port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
    [[ -n "$port" ]] && { echo "$port"; return 0; }
    sleep 0.1
  done
  return 1
}

# A TCP port nothing listens on now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits until something accepts connections on 127.0.0.1:$1.
wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Sends N sequential `GET PATH` requests on one keep-alive connection to 127.0.0.1:PORT, reading each
# response (framed by Content-Length) before the next; fails on a status other than 200. For instruction
# counts under callgrind, where a load generator would only add noise.
send_sequential_requests() {
  python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
for _ in range(n):
    s.sendall(request)
    data = b""
    while True:
        data += s.recv(65536)
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and len(body) >= int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
            break
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("not a 200: " + head.split(b"\r\n")[0].decode())
PY
}
