package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ReadMemory reads the kB figures of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile, ...).
func ReadMemory(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		return nil, fmt.Errorf("memory of pid %d: no VmRSS in /proc/%d/status", pid, pid)
	}
	return out, sc.Err()
}

// Snapshot maps every regular file under dir to its size.
func Snapshot(dir string) (map[string]int64, error) {
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && os.IsNotExist(err) {
				return nil // removed while we walked
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		out[p] = info.Size()
		return nil
	})
	return out, err
}

// Freed is how many bytes of the files in before are gone from dir: the
// files removed, and what the others shrank by. Growth and new files do not
// count against it (a database file that grows does not hide a blob that
// went).
func Freed(dir string, before map[string]int64) (int64, error) {
	now, err := Snapshot(dir)
	if err != nil {
		return 0, err
	}
	var freed int64
	for p, was := range before {
		if d := was - now[p]; d > 0 {
			freed += d
		}
	}
	return freed, nil
}

// genLayer is a large layer generated as it is read, so that neither the
// client's memory nor its CPU stands in the way: a seeded 1 MiB block,
// repeated, each copy starting with its index.
type genLayer struct {
	size   int64
	block  []byte
	digest v1.Hash
}

const genBlock = 1 << 20

func newGenLayer(seed uint64, size int64) (*genLayer, error) {
	l := &genLayer{size: size, block: content(seed, kindLarge, 0, 0, genBlock)}
	h := sha256.New()
	if _, err := io.Copy(h, l.reader()); err != nil {
		return nil, err
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return l, nil
}

type genReader struct {
	l   *genLayer
	off int64
}

func (r *genReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.off < r.l.size {
		blk, in := r.off/genBlock, r.off%genBlock
		end := int64(genBlock)
		if rest := r.l.size - (r.off - in); rest < end {
			end = rest
		}
		var src []byte
		if in < 8 {
			var stamp [8]byte
			binary.BigEndian.PutUint64(stamp[:], uint64(blk))
			src = stamp[in:]
			if int64(len(src)) > end-in {
				src = src[:end-in]
			}
		} else {
			src = r.l.block[in:end]
		}
		c := copy(p[n:], src)
		n += c
		r.off += int64(c)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (l *genLayer) reader() io.ReadCloser { return io.NopCloser(&genReader{l: l}) }

func (l *genLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *genLayer) Compressed() (io.ReadCloser, error)   { return l.reader(), nil }
func (l *genLayer) Uncompressed() (io.ReadCloser, error) { return l.reader(), nil }
func (l *genLayer) Size() (int64, error)                 { return l.size, nil }
func (l *genLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }

// DD runs `dd if=/dev/zero of=FILE bs=1M count=MIB conv=fdatasync`, removes
// the file, and returns what dd wrote in MB/s (10^6 bytes).
func DD(ctx context.Context, file string, mib int) (float64, error) {
	defer os.Remove(file)
	cmd := exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+file, "bs=1M", fmt.Sprintf("count=%d", mib), "conv=fdatasync")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("dd: %v: %s", err, out)
	}
	// dd's own figure: "536870912 bytes (537 MB, 512 MiB) copied, 1.23 s, 436 MB/s"
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) >= 4 {
		bytes, err1 := strconv.ParseFloat(f[0], 64)
		s, err2 := strconv.ParseFloat(f[len(f)-4], 64)
		if err1 == nil && err2 == nil && s > 0 {
			return bytes / 1e6 / s, nil
		}
	}
	return float64(mib<<20) / 1e6 / secs, nil
}
