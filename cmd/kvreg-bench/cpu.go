package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU time per phase: on a machine that the servers and the load tool
// share, a throughput ratio is diluted by whatever both clusters spend the
// same (the S3 server sending the same bytes, the client hashing them).
// What each group of processes spent per unit of work shows where a
// cluster's CPU goes, and what one more image costs it.

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, 100 on every
// Linux ABI whatever the kernel's own tick.
const userHZ = 100

// cpuGroups names groups of processes (the registry's replicas, the S3
// server, the database, the balancer) by their root pids; each counts its
// roots and every live descendant (PostgreSQL's backends).
type cpuGroups map[string][]int

// parseCPUGroups parses "name=pid,pid;name=pid".
func parseCPUGroups(s string) (cpuGroups, error) {
	g := cpuGroups{}
	for _, part := range strings.Split(s, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, list, ok := strings.Cut(part, "=")
		if !ok || name == "" || list == "" {
			return nil, fmt.Errorf("-cpu: %q is not name=pid,pid", part)
		}
		for _, p := range strings.Split(list, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || pid <= 0 {
				return nil, fmt.Errorf("-cpu: %q: %q is not a process id", name, p)
			}
			g[name] = append(g[name], pid)
		}
	}
	if len(g) == 0 {
		return nil, fmt.Errorf("-cpu: no groups in %q", s)
	}
	return g, nil
}

// procStat is what a phase needs of one process: its parent, and its CPU
// ticks with those of its children it has reaped (a backend that ended
// during the phase is then still counted, by its parent).
type procStat struct {
	ppid  int
	ticks int64
}

// parseStat reads a /proc/PID/stat line. The command, field 2, is in
// parentheses and may hold spaces and parentheses itself: the fields are
// counted from the last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %q: no command", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat %q: %d fields after the command", line, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat %q: ppid: %w", line, err)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat %q: times: %w", line, err)
		}
		ticks += n
	}
	return procStat{ppid: ppid, ticks: ticks}, nil
}

// readProcs reads every process's stat; one that ends meanwhile is left
// out.
func readProcs() (map[int]procStat, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(dirs))
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		if st, err := parseStat(string(b)); err == nil {
			out[pid] = st
		}
	}
	return out, nil
}

// ticks sums each group's ticks in ps: its roots and their descendants,
// each process once.
func (g cpuGroups) ticks(ps map[int]procStat) map[string]int64 {
	children := map[int][]int{}
	for pid, st := range ps {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := make(map[string]int64, len(g))
	for name, roots := range g {
		seen := map[int]bool{}
		stack := append([]int(nil), roots...)
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			if st, ok := ps[pid]; ok {
				out[name] += st.ticks
			}
			stack = append(stack, children[pid]...)
		}
	}
	return out
}

// cpuPhase reads the processes' CPU at the start of a phase whose CPU
// the result reports (push, pull, head, with -cpu), and returns what
// records the phase's figures at its end.
func (b *bench) cpuPhase(phase string) (done func() error) {
	if b.cfg.CPU == nil || (phase != "push" && phase != "pull" && phase != "head") {
		return func() error { return nil }
	}
	before, err := readProcs()
	return func() error {
		if err != nil {
			return err
		}
		after, err := readProcs()
		if err != nil {
			return err
		}
		if b.res.CPUSeconds == nil {
			b.res.CPUSeconds = map[string]map[string]float64{}
		}
		b.res.CPUSeconds[phase] = b.cfg.CPU.cpuSpent(before, after)
		return nil
	}
}

// cpuSpent is what each group spent between two readings, in seconds.
func (g cpuGroups) cpuSpent(before, after map[int]procStat) map[string]float64 {
	b, a := g.ticks(before), g.ticks(after)
	out := make(map[string]float64, len(g))
	for name := range g {
		out[name] = float64(a[name]-b[name]) / userHZ
	}
	return out
}
