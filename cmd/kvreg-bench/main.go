// Command kvreg-bench drives a registry with a fixed, seeded workload and
// prints one line of JSON with what it measured. It speaks the OCI
// distribution API through go-containerregistry, so it runs against any
// registry: kvreg, the reference registry (distribution), or others.
//
// The workload, in order:
//
//  1. push: -images images, each made of -base-layers layers shared by all
//     images plus -unique-layers layers of its own and its own config, spread
//     over -repos repositories, by -clients concurrent clients (each push uses
//     -jobs concurrent uploads, go-containerregistry's default);
//  2. pull: every image (manifest, config and every layer, digests verified);
//  3. list: the tags of every repository, repeatedly, for -list-seconds;
//  4. head: HEAD of blobs for -head-seconds (requests/s);
//  5. large: push one layer of -large-mb MiB (as an image of its own) and
//     pull it back -large-pulls times as `crane blob` does (a new
//     go-containerregistry transport and remote.Layer each time; the median
//     MB/s);
//  6. memory: the server's resident memory, read from /proc/PID/status when
//     -pid is given;
//  7. delete: half of the images, by manifest digest, then the time until
//     the bytes of their own layers and configs are gone from -data-dir
//     (optionally running -after-delete, e.g. a garbage-collect pass, while
//     it watches), then a check that the kept images still pull and the
//     deleted ones do not.
//
// MB are 10^6 bytes throughout, as dd counts them. It only talks to
// loopback addresses over plain HTTP.
//
// Other modes: -compare A.json -against B.json prints two results side by
// side with ratios; -free-port prints a free loopback TCP port;
// -delay-proxy URL serves a proxy in front of URL that waits -delay before
// each request (DelayProxy), which makes a storage server on this machine
// answer as a remote one would.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvreg-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := DefaultConfig()
	fs.StringVar(&cfg.URL, "url", "", "registry base URL, plain HTTP on a loopback address (http://127.0.0.1:PORT)")
	fs.StringVar(&cfg.Name, "name", "", "a label copied into the result")
	fs.IntVar(&cfg.Images, "images", cfg.Images, "images to push")
	fs.IntVar(&cfg.Repos, "repos", cfg.Repos, "repositories the images are spread over")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients")
	fs.IntVar(&cfg.Jobs, "jobs", cfg.Jobs, "concurrent blob uploads within one image push")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of all generated content")
	fs.IntVar(&cfg.BaseLayers, "base-layers", cfg.BaseLayers, "layers shared by every image")
	fs.Int64Var(&cfg.BaseSize, "base-size", cfg.BaseSize, "bytes of each shared layer")
	fs.IntVar(&cfg.UniqueLayers, "unique-layers", cfg.UniqueLayers, "layers of each image's own")
	fs.Int64Var(&cfg.UniqueSize, "unique-size", cfg.UniqueSize, "bytes of each unique layer")
	fs.DurationVar(&cfg.ListFor, "list-seconds", cfg.ListFor, "how long to list tags (a duration, e.g. 2s)")
	fs.DurationVar(&cfg.HeadFor, "head-seconds", cfg.HeadFor, "how long to HEAD blobs (a duration, e.g. 5s)")
	fs.IntVar(&cfg.LargeMB, "large-mb", cfg.LargeMB, "MiB of the large layer (0: skip)")
	fs.IntVar(&cfg.LargePulls, "large-pulls", cfg.LargePulls, "pulls of the large layer, each as `crane blob` does it (the figure is their median)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "the registry's data directory, watched for the bytes a delete gives back (empty: not measured)")
	fs.StringVar(&cfg.AfterDelete, "after-delete", "", "shell command run right after the DELETEs, inside the timed window (e.g. stop, garbage-collect, restart)")
	fs.DurationVar(&cfg.ReclaimTimeout, "reclaim-timeout", cfg.ReclaimTimeout, "give up waiting for the bytes after this long")
	fs.IntVar(&cfg.PID, "pid", 0, "the server's process id, for its resident memory (0: not measured)")
	cpu := fs.String("cpu", "", "processes whose CPU time the push, pull and HEAD phases report, as name=pid,pid;name=pid (each with its descendants; the load tool is added as \"load tool\")")
	fs.StringVar(&cfg.DDFile, "dd-file", "", "a file for dd to write (-large-mb MiB, conv=fdatasync) before and after the large push: the disk's figure at that time (empty: no dd)")
	fs.DurationVar(&cfg.WaitReady, "wait-ready", cfg.WaitReady, "wait this long for the registry to answer /v2/ before starting")
	compare := fs.String("compare", "", "print the results in these JSON files (comma-separated: the median of each figure) side by side with -against's")
	against := fs.String("against", "", "the reference results for -compare (comma-separated)")
	refName := fs.String("ref-name", "", "the reference's name in the -compare table (default: its -name)")
	ddMBps := fs.Float64("dd-mb-per-s", 0, "with -compare: what a separate dd conv=fdatasync wrote on the same disk, MB/s, for one more row (the table always compares with the dd figures inside the results)")
	freePort := fs.Bool("free-port", false, "print a free TCP port on 127.0.0.1 and exit")
	delayProxy := fs.String("delay-proxy", "", "serve, until interrupted, a proxy in front of this URL (plain HTTP on loopback) that waits -delay before passing each request on; print its URL first")
	delay := fs.Duration("delay", 10*time.Millisecond, "with -delay-proxy: the wait before each request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvreg-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch {
	case *freePort:
		p, err := FreePort()
		if err != nil {
			fmt.Fprintln(stderr, "kvreg-bench:", err)
			return 1
		}
		fmt.Fprintln(stdout, p)
		return 0
	case *delayProxy != "":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := serveDelayProxy(ctx, *delayProxy, *delay, func(u string) { fmt.Fprintln(stdout, u) })
		if err != nil {
			fmt.Fprintln(stderr, "kvreg-bench:", err)
			return 1
		}
		return 0
	case *compare != "":
		if err := Compare(stdout, *compare, *against, *refName, *ddMBps); err != nil {
			fmt.Fprintln(stderr, "kvreg-bench:", err)
			return 1
		}
		return 0
	}
	if cfg.URL == "" {
		fmt.Fprintln(stderr, "kvreg-bench: -url is required")
		return 2
	}
	if *cpu != "" {
		g, err := parseCPUGroups(*cpu)
		if err != nil {
			fmt.Fprintln(stderr, "kvreg-bench:", err)
			return 2
		}
		g["load tool"] = []int{os.Getpid()}
		cfg.CPU = g
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Log = func(format string, args ...any) {
		fmt.Fprintf(stderr, "kvreg-bench: "+format+"\n", args...)
	}
	res, err := Run(ctx, cfg)
	if res != nil {
		line, jerr := json.Marshal(res)
		if jerr != nil {
			fmt.Fprintln(stderr, "kvreg-bench:", jerr)
			return 1
		}
		fmt.Fprintln(stdout, string(line))
	}
	if err != nil {
		fmt.Fprintln(stderr, "kvreg-bench:", err)
		return 1
	}
	return 0
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// since is seconds since t, for the JSON figures.
func since(t time.Time) float64 { return time.Since(t).Seconds() }
