package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// FindTool looks a client (crane, regctl, busybox, ...) up on PATH, then
// where go install puts it ($GOBIN, $GOPATH/bin, $HOME/go/bin), then in
// the system's bin directories (a test may run with a short PATH). Whether a missing
// one skips or fails a test is the test's to say (CI=true fails).
func FindTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gb := os.Getenv("GOBIN"); gb != "" {
		dirs = append(dirs, gb)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, d := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	dirs = append(dirs, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, $GOBIN, $GOPATH/bin, $HOME/go/bin or the system's bin directories", name)
}
