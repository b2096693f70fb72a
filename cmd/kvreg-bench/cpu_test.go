package main

import (
	"os"
	"testing"
)

// A stat line's fields are counted from the command's last ')', which may
// hold spaces and parentheses; the times are utime, stime and the reaped
// children's cutime and cstime.
func TestParseStat(t *testing.T) {
	line := "4242 (postgres: a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 30 12 5 3 20 0 1 0 100 1000 50 0\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.ticks != 30+12+5+3 {
		t.Fatalf("parsed %+v, want ppid 17 and 50 ticks", st)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A group counts its roots and every descendant once, and nothing else;
// what a group spent is the difference of two readings, in seconds.
func TestCPUGroups(t *testing.T) {
	g, err := parseCPUGroups("registry=10,20; database=30")
	if err != nil {
		t.Fatal(err)
	}
	before := map[int]procStat{
		1:  {ppid: 0, ticks: 1000},
		10: {ppid: 1, ticks: 100},
		11: {ppid: 10, ticks: 50},
		20: {ppid: 1, ticks: 100},
		30: {ppid: 1, ticks: 200},
		31: {ppid: 30, ticks: 40},
		32: {ppid: 31, ticks: 10},
		40: {ppid: 1, ticks: 500},
	}
	after := map[int]procStat{
		1:  {ppid: 0, ticks: 2000},
		10: {ppid: 1, ticks: 150},
		11: {ppid: 10, ticks: 75},
		20: {ppid: 1, ticks: 130},
		// 31 ended, its ticks and 32's (reaped by it) now in 30's.
		30: {ppid: 1, ticks: 200 + 60 + 20},
		33: {ppid: 30, ticks: 100}, // started during the phase
		40: {ppid: 1, ticks: 900},
	}
	got := g.cpuSpent(before, after)
	if got["registry"] != 1.05 || got["database"] != 1.30 || len(got) != 2 {
		t.Fatalf("spent %v, want registry 1.05 s (105 ticks) and database 1.30 s (130 ticks)", got)
	}
	for _, bad := range []string{"", "registry", "registry=", "=1", "registry=x", "registry=0"} {
		if _, err := parseCPUGroups(bad); err == nil {
			t.Errorf("-cpu %q parsed", bad)
		}
	}
}

// This process is among those read, with its parent.
func TestReadProcs(t *testing.T) {
	ps, err := readProcs()
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := ps[os.Getpid()]; !ok || st.ppid != os.Getppid() {
		t.Fatalf("this process read as %+v (%v), want parent %d", st, ok, os.Getppid())
	}
}

// The table has a row per phase for the sum and one per group, each per
// unit of the phase's work.
func TestCPURows(t *testing.T) {
	r := &Result{PullBytes: 2e8, HeadRequests: 1000, CPUSeconds: map[string]map[string]float64{
		"push": {"registry": 2, "S3 server": 1},
		"pull": {"registry": 0.5},
		"head": {"registry": 0.25},
	}}
	r.Workload.Images = 64
	want := map[string]float64{
		"push, CPU ms per image, all measured":   3000.0 / 64,
		"  S3 server":                            1000.0 / 64,
		"pull, CPU ms per 100 MB, all measured":  250,
		"HEAD, CPU µs per request, all measured": 250,
	}
	found := 0
	for _, row := range cpuRows([]*Result{r}) {
		v, ok := row.get(r)
		if w, is := want[row.label]; is && ok {
			found++
			if d := v - w; d > 1e-9 || d < -1e-9 {
				t.Errorf("%s: %v, want %v", row.label, v, w)
			}
		}
	}
	if found != len(want) {
		t.Fatalf("%d of the %d rows looked for", found, len(want))
	}
}
