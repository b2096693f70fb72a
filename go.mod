module github.com/kvreg/kvreg

go 1.26.8

require (
	github.com/julienschmidt/httprouter v1.3.0
	github.com/opencontainers/go-digest v1.0.0
	github.com/urfave/cli/v2 v2.27.7
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
