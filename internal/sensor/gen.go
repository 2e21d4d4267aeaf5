package sensor

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target amd64 -no-global-types bpf bpf/sensor.c -- -O2 -g -Wall -I/usr/include/x86_64-linux-gnu -Ibpf
