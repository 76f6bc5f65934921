module spawn

go 1.26.0

// Every stage is a short-lived or mostly idle process inside a cgroup it
// may not read: no cgroup-aware GOMAXPROCS at start-up (it reads cgroup
// files, and a PID 1 kept one open where container root could reopen it
// through /proc/1/fd), and no background re-reading of them.
godebug (
	containermaxprocs=0
	updatemaxprocs=0
)

require (
	github.com/cilium/ebpf v0.22.0
	github.com/kballard/go-shellquote v0.0.0-20180428030007-95032a82bc51
	github.com/urfave/cli/v2 v2.27.7
	golang.org/x/sys v0.50.0
	kernel.org/pub/linux/libs/security/libcap/cap v1.2.78
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect
)
