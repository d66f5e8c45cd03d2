#!/bin/sh
# Measure softflowd on a trace: wall time, packets/s and peak RSS, three runs.
# usage: bench/softflowd.sh [TRACE]   (default bench/out/trace.pcap; packets from TRACE.json)
# softflowd exports NetFlow v9 to a loopback port nobody listens on (the datagrams are dropped
# by the kernel; softflowd does not wait for them). -m gives it room for every flow (its default
# of 8192 would evict), -6 makes it track IPv6 too.
set -eu
trace=${1:-bench/out/trace.pcap}
packets=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]+'.json'))['packets'])" "$trace")
cat "$trace" > /dev/null
for run in 1 2 3; do
    /usr/bin/time -f "%e %M" -o /tmp/softflowd-bench.time \
        timeout 600 softflowd -r "$trace" -d -6 -m 4000000 -v 9 -n 127.0.0.1:39995 \
        -c /tmp/softflowd-bench.ctl -p /tmp/softflowd-bench.pid < /dev/null > /tmp/softflowd-bench.out 2>&1
    read -r secs kib < /tmp/softflowd-bench.time
    processed=$(sed -n 's/^Packets processed: //p' /tmp/softflowd-bench.out)
    python3 -c "import sys; s,k,p,n=float(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),sys.argv[4]; print(f'softflowd run: {s:.2f} s, {p/s/1e6:.2f} Mpps, peak RSS {k/1024:.1f} MiB, packets processed {n}')" "$secs" "$kib" "$packets" "$processed"
done
