package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config is the workload. Everything it pushes is generated from Seed, so
// two runs with the same Config push the same bytes.
type Config struct {
	URL  string `json:"-"`
	Name string `json:"-"`

	Images       int    `json:"images"`
	Repos        int    `json:"repos"`
	Clients      int    `json:"clients"`
	Jobs         int    `json:"jobs"`
	Seed         uint64 `json:"seed"`
	BaseLayers   int    `json:"baseLayers"`
	BaseSize     int64  `json:"baseSize"`
	UniqueLayers int    `json:"uniqueLayers"`
	UniqueSize   int64  `json:"uniqueSize"`
	LargeMB      int    `json:"largeMiB"`
	// LargePulls: how many times the large layer is pulled back, each
	// time as `crane blob` does it; the figure is their median.
	LargePulls int `json:"largePulls"`

	ListFor        time.Duration `json:"-"`
	HeadFor        time.Duration `json:"-"`
	DataDir        string        `json:"-"`
	AfterDelete    string        `json:"-"`
	ReclaimTimeout time.Duration `json:"-"`
	PID            int           `json:"-"`
	// CPU are the processes whose CPU time the push, pull and HEAD phases
	// report (-cpu); the load tool itself is added as "load tool".
	CPU cpuGroups `json:"-"`
	// DDFile, if set, is where dd writes as many MiB as the large layer
	// (conv=fdatasync), right before and right after the large push, for
	// a figure of the disk taken at the same time.
	DDFile    string        `json:"-"`
	WaitReady time.Duration `json:"-"`

	// Log, if set, is told what the run is doing.
	Log func(format string, args ...any) `json:"-"`
}

// DefaultConfig is the workload `make bench` runs.
func DefaultConfig() Config {
	return Config{
		Images: 64, Repos: 4, Clients: 8, Jobs: 4, Seed: 1,
		BaseLayers: 3, BaseSize: 4 << 20, UniqueLayers: 2, UniqueSize: 1 << 20,
		ListFor: 2 * time.Second, HeadFor: 5 * time.Second, LargeMB: 512, LargePulls: 3,
		ReclaimTimeout: 5 * time.Minute, WaitReady: 30 * time.Second,
	}
}

// Result holds every figure of one run. Figures that were not measured are
// left out of the JSON.
type Result struct {
	Name     string `json:"name,omitempty"`
	URL      string `json:"url"`
	Workload Config `json:"workload"`
	Started  string `json:"started"`

	PushSeconds    float64 `json:"push_s"`
	PushImagesPerS float64 `json:"push_images_per_s"`
	PushBytes      int64   `json:"push_bytes"` // distinct blob bytes per repository
	PushMBPerS     float64 `json:"push_mb_per_s"`
	PushP50Ms      float64 `json:"push_p50_ms"`
	PushP99Ms      float64 `json:"push_p99_ms"`

	PullSeconds float64 `json:"pull_s"`
	PullBytes   int64   `json:"pull_bytes"`
	PullMBPerS  float64 `json:"pull_mb_per_s"`

	ListRequests     int64   `json:"list_requests"`
	ListRequestsPerS float64 `json:"list_requests_per_s"`
	ListP50Ms        float64 `json:"list_p50_ms"`

	HeadRequests     int64   `json:"head_requests"`
	HeadRequestsPerS float64 `json:"head_requests_per_s"`
	HeadErrors       int64   `json:"head_errors"`
	HeadP50Ms        float64 `json:"head_p50_ms"`
	HeadP99Ms        float64 `json:"head_p99_ms"`

	LargeBytes      int64   `json:"large_bytes,omitempty"`
	LargePushS      float64 `json:"large_push_s,omitempty"`
	LargePushMBPerS float64 `json:"large_push_mb_per_s,omitempty"`
	LargePullS      float64 `json:"large_pull_s,omitempty"`        // the median pull
	LargePullMBPerS float64 `json:"large_pull_mb_per_s,omitempty"` // the median pull
	// LargePullsMBPerS: every pull of the large layer, in order.
	LargePullsMBPerS []float64 `json:"large_pulls_mb_per_s,omitempty"`
	// dd bs=1M conv=fdatasync of the same size on the same disk, before and
	// after the large push, and their mean.
	DDBeforeMBPerS float64 `json:"dd_before_mb_per_s,omitempty"`
	DDAfterMBPerS  float64 `json:"dd_after_mb_per_s,omitempty"`
	DDMBPerS       float64 `json:"dd_mb_per_s,omitempty"`

	// The server's memory after push, pull, list, head and large (kB).
	RSSKB     int64 `json:"rss_kb,omitempty"`
	RSSAnonKB int64 `json:"rss_anon_kb,omitempty"`
	RSSFileKB int64 `json:"rss_file_kb,omitempty"`
	HWMKB     int64 `json:"rss_peak_kb,omitempty"`

	// CPU seconds each group of processes spent in a phase (-cpu), by
	// phase (push, pull, head) and group.
	CPUSeconds map[string]map[string]float64 `json:"cpu_s,omitempty"`

	DeletedImages        int      `json:"deleted_images"`
	DeleteSeconds        float64  `json:"delete_s"`
	ReclaimExpectedBytes int64    `json:"reclaim_expected_bytes"`
	ReclaimedBytes       *int64   `json:"reclaimed_bytes,omitempty"`
	ReclaimSeconds       *float64 `json:"reclaim_s,omitempty"` // from the first DELETE to the bytes gone
	ReclaimTimedOut      bool     `json:"reclaim_timed_out,omitempty"`
	AfterDeleteSeconds   *float64 `json:"after_delete_s,omitempty"` // how long -after-delete ran
	AfterDeleteError     string   `json:"after_delete_error,omitempty"`

	VerifyOK    bool   `json:"verify_ok"`
	VerifyError string `json:"verify_error,omitempty"`

	TotalSeconds float64  `json:"total_s"`
	Errors       []string `json:"errors,omitempty"`
}

// image is one generated image and where it goes.
type image struct {
	index   int
	repo    string
	tag     string
	img     v1.Image
	digest  v1.Hash
	own     int64     // bytes of its config and unique layers
	blobs   []v1.Hash // config, then layers
	deleted bool
}

// bench is one run in progress.
type bench struct {
	cfg      Config
	reg      name.Registry
	base     *http.Transport
	opts     []remote.Option
	images   []*image
	repoBlob map[string]map[v1.Hash]int64 // distinct blobs pushed per repository
	res      *Result

	mu   sync.Mutex
	errs []string
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		b.cfg.Log(format, args...)
	}
}

func (b *bench) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) < 20 {
		b.errs = append(b.errs, err.Error())
	}
}

func (b *bench) failures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.errs)
}

// CheckURL accepts plain HTTP to a loopback address only, and returns the
// registry's host:port.
func CheckURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %v", err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("-url %q: only plain http:// to a loopback address is supported", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("-url %q: give the registry's base URL, http://HOST:PORT", raw)
	}
	host := u.Hostname()
	if host == "" || u.Port() == "" {
		return "", fmt.Errorf("-url %q: host and port are required", raw)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("-url %q: refusing a non-loopback host %q; kvreg-bench only drives registries on this machine", raw, host)
		}
	}
	return u.Host, nil
}

// Run runs the whole workload. It returns the figures it got even when it
// fails part way.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	b, err := newBench(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.base.CloseIdleConnections()
	err = b.run(ctx)
	b.res.TotalSeconds = since(start)
	b.res.Errors = b.errs
	return b.res, err
}

func newBench(ctx context.Context, cfg Config) (*bench, error) {
	hostport, err := CheckURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Images < 2 || cfg.Repos < 1 || cfg.Clients < 1 || cfg.Jobs < 1 || cfg.BaseLayers < 0 ||
		cfg.UniqueLayers < 1 || cfg.UniqueSize < 1 || cfg.BaseSize < 1 || cfg.LargeMB < 0 || cfg.LargePulls < 1 {
		return nil, errors.New("workload: need -images >= 2, -repos, -clients, -jobs, -unique-layers, -large-pulls >= 1 and positive sizes")
	}
	reg, err := name.NewRegistry(hostport, name.Insecure)
	if err != nil {
		return nil, err
	}
	base := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	b := &bench{
		cfg:  cfg,
		reg:  reg,
		base: base,
		opts: []remote.Option{
			remote.WithContext(ctx), remote.WithAuth(authn.Anonymous), remote.WithTransport(base),
			remote.WithJobs(cfg.Jobs), remote.WithUserAgent("kvreg-bench"),
		},
		repoBlob: map[string]map[v1.Hash]int64{},
		res:      &Result{Name: cfg.Name, URL: cfg.URL, Workload: cfg, Started: time.Now().UTC().Format(time.RFC3339)},
	}
	return b, nil
}

func (b *bench) run(ctx context.Context) error {
	if err := b.waitReady(ctx, b.cfg.WaitReady); err != nil {
		return err
	}
	b.logf("generating %d images (seed %d)", b.cfg.Images, b.cfg.Seed)
	if err := b.generate(); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"push", b.push}, {"pull", b.pull}, {"list", b.list}, {"head", b.head},
		{"large", b.large}, {"memory", b.memory}, {"delete", b.delete}, {"verify", b.verify},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.logf("%s", s.name)
		done := b.cpuPhase(s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := done(); err != nil {
			return fmt.Errorf("%s: cpu: %w", s.name, err)
		}
	}
	if n := b.failures(); n > 0 {
		return fmt.Errorf("%d request(s) failed", n)
	}
	return nil
}

// waitReady polls GET /v2/ until the registry answers.
func (b *bench) waitReady(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	client := &http.Client{Transport: b.base, Timeout: 2 * time.Second}
	u := b.cfg.URL + "/v2/"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("registry at %s not ready: %v", b.cfg.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// content returns n bytes determined by the seed and the labels.
func content(seed uint64, kind, i, j uint64, n int64) []byte {
	var s [32]byte
	binary.BigEndian.PutUint64(s[0:], seed)
	binary.BigEndian.PutUint64(s[8:], kind)
	binary.BigEndian.PutUint64(s[16:], i)
	binary.BigEndian.PutUint64(s[24:], j)
	out := make([]byte, n)
	rand.NewChaCha8(s).Read(out)
	return out
}

const (
	kindBase = iota + 1
	kindUnique
	kindLarge
)

// deleted reports whether image i is one the delete step removes: every
// other image of each repository.
func (c Config) deleted(i int) bool { return (i/c.Repos)%2 == 0 }

func (b *bench) generate() error {
	cfg := b.cfg
	bases := make([]v1.Layer, cfg.BaseLayers)
	for k := range bases {
		bases[k] = static.NewLayer(content(cfg.Seed, kindBase, uint64(k), 0, cfg.BaseSize), types.OCILayer)
	}
	b.images = make([]*image, cfg.Images)
	for i := range b.images {
		layers := append([]v1.Layer(nil), bases...)
		var own int64
		for j := 0; j < cfg.UniqueLayers; j++ {
			layers = append(layers, static.NewLayer(content(cfg.Seed, kindUnique, uint64(i), uint64(j), cfg.UniqueSize), types.OCILayer))
			own += cfg.UniqueSize
		}
		img, err := newImage(layers, map[string]string{
			"org.kvreg.bench.seed":  strconv.FormatUint(cfg.Seed, 10),
			"org.kvreg.bench.image": strconv.Itoa(i),
		})
		if err != nil {
			return err
		}
		im := &image{index: i, repo: fmt.Sprintf("bench/app%02d", i%cfg.Repos), tag: fmt.Sprintf("v%04d", i), img: img, deleted: cfg.deleted(i)}
		// Compute every digest now, so that no push times the client's hashing.
		if im.digest, err = img.Digest(); err != nil {
			return err
		}
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		im.own = own + m.Config.Size
		im.blobs = append(im.blobs, m.Config.Digest)
		seen := b.repoBlob[im.repo]
		if seen == nil {
			seen = map[v1.Hash]int64{}
			b.repoBlob[im.repo] = seen
		}
		seen[m.Config.Digest] = m.Config.Size
		for _, l := range m.Layers {
			im.blobs = append(im.blobs, l.Digest)
			seen[l.Digest] = l.Size
		}
		b.images[i] = im
	}
	return nil
}

func newImage(layers []v1.Layer, labels map[string]string) (v1.Image, error) {
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: time.Unix(1_700_000_000, 0).UTC()},
		Config:       v1.Config{Labels: labels},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.AppendLayers(img, layers...)
}

func (b *bench) ref(im *image) name.Tag {
	return b.reg.Repo(im.repo).Tag(im.tag)
}

// each runs fn for every item of work on n workers and waits.
func each[T any](n int, work []T, fn func(worker int, item T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for it := range ch {
				fn(w, it)
			}
		}(w)
	}
	for _, it := range work {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

func mbps(bytes int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / secs
}

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(p * float64(len(ds)-1))
	return float64(ds[i]) / float64(time.Millisecond)
}

func (b *bench) push(ctx context.Context) error {
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	each(b.cfg.Clients, b.images, func(_ int, im *image) {
		t := time.Now()
		if err := remote.Write(b.ref(im), im.img, b.opts...); err != nil {
			b.fail(fmt.Errorf("push %s: %w", b.ref(im), err))
			return
		}
		mu.Lock()
		lat = append(lat, time.Since(t))
		mu.Unlock()
	})
	secs := since(start)
	var bytes int64
	for _, blobs := range b.repoBlob {
		for _, n := range blobs {
			bytes += n
		}
	}
	r := b.res
	r.PushSeconds, r.PushBytes = secs, bytes
	r.PushImagesPerS = float64(len(lat)) / secs
	r.PushMBPerS = mbps(bytes, secs)
	r.PushP50Ms, r.PushP99Ms = percentile(lat, 0.5), percentile(lat, 0.99)
	if len(lat) != len(b.images) {
		return fmt.Errorf("%d of %d pushes failed", len(b.images)-len(lat), len(b.images))
	}
	return nil
}

// readBuf is how much a pull reads at a time, as containerd's content
// copy does (1 MiB): io.Discard's own ReadFrom reads 8 KiB at a time, a
// system call each, which made the load tool's receiving dearer than the
// registries' sending.
const readBuf = 1 << 20

// discard is io.Discard without its ReadFrom, so that io.CopyBuffer reads
// into the caller's buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// pullImage reads an image's manifest, config and every layer through the
// client's digest verification, and returns the bytes read.
func (b *bench) pullImage(ref name.Reference, opts []remote.Option) (int64, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw))
	cfg, err := img.RawConfigFile()
	if err != nil {
		return n, err
	}
	n += int64(len(cfg))
	layers, err := img.Layers()
	if err != nil {
		return n, err
	}
	buf := make([]byte, readBuf)
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return n, err
		}
		c, err := io.CopyBuffer(discard{}, rc, buf)
		n += c
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (b *bench) pull(ctx context.Context) error {
	var total atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	each(b.cfg.Clients, b.images, func(_ int, im *image) {
		n, err := b.pullImage(b.ref(im), b.opts)
		total.Add(n)
		if err != nil {
			failed.Add(1)
			b.fail(fmt.Errorf("pull %s: %w", b.ref(im), err))
		}
	})
	secs := since(start)
	b.res.PullSeconds, b.res.PullBytes = secs, total.Load()
	b.res.PullMBPerS = mbps(total.Load(), secs)
	if failed.Load() > 0 {
		return fmt.Errorf("%d pulls failed", failed.Load())
	}
	return nil
}

func (b *bench) repos() []string {
	var out []string
	for r := range b.repoBlob {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// list lists every repository's tags, over and over, for ListFor. Each
// client keeps one go-containerregistry Puller, so that only the first list
// of a repository pays for the client's /v2/ ping.
func (b *bench) list(ctx context.Context) error {
	repos := b.repos()
	want := map[string]int{}
	for _, im := range b.images {
		want[im.repo]++
	}
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(b.cfg.ListFor)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < b.cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			p, err := remote.NewPuller(b.opts...)
			if err != nil {
				b.fail(err)
				failed.Add(1)
				return
			}
			var mine []time.Duration
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				repo := repos[i%len(repos)]
				t := time.Now()
				tags, err := p.List(ctx, b.reg.Repo(repo))
				if err == nil && len(tags) != want[repo] {
					err = fmt.Errorf("%d tags, want %d", len(tags), want[repo])
				}
				if err != nil {
					failed.Add(1)
					b.fail(fmt.Errorf("list %s: %w", repo, err))
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	secs := since(start)
	b.res.ListRequests = int64(len(lat))
	b.res.ListRequestsPerS = float64(len(lat)) / secs
	b.res.ListP50Ms = percentile(lat, 0.5)
	if failed.Load() > 0 {
		return fmt.Errorf("%d list requests failed", failed.Load())
	}
	return nil
}

// rawClient is an HTTP client through go-containerregistry's transport
// (ping, auth) for the requests the high-level API makes no faster: HEAD
// in a loop.
func (b *bench) rawClient(ctx context.Context) (*http.Client, error) {
	var scopes []string
	for _, r := range b.repos() {
		scopes = append(scopes, b.reg.Repo(r).Scope(transport.PullScope))
	}
	rt, err := transport.NewWithContext(ctx, b.reg, authn.Anonymous, b.base, scopes)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}, nil
}

type blobRef struct {
	repo   string
	digest v1.Hash
}

// keptBlobs are the blobs of the images the delete step keeps. HEAD asks
// only for those: kvreg pins a blob that a HEAD found (--pin-window), to
// cover a push in flight, and a pinned blob would rightly outlive the delete.
func (b *bench) keptBlobs() []blobRef {
	seen := map[blobRef]bool{}
	var out []blobRef
	for _, im := range b.images {
		if im.deleted {
			continue
		}
		for _, d := range im.blobs {
			k := blobRef{im.repo, d}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func (b *bench) blobURL(repo string, d v1.Hash) string {
	return b.cfg.URL + "/v2/" + repo + "/blobs/" + d.String()
}

func (b *bench) head(ctx context.Context) error {
	client, err := b.rawClient(ctx)
	if err != nil {
		return err
	}
	targets := b.keptBlobs()
	if len(targets) == 0 {
		// One image per repository: the delete step keeps none, so there
		// is no blob a HEAD may pin.
		return nil
	}
	var ok, bad atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(b.cfg.HeadFor)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < b.cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(b.cfg.Seed, uint64(c)))
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := targets[rnd.IntN(len(targets))]
				req, _ := http.NewRequestWithContext(ctx, http.MethodHead, b.blobURL(t.repo, t.digest), nil)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HEAD %s: %s", req.URL.Path, resp.Status)
					}
				}
				if err != nil {
					if bad.Add(1) <= 3 {
						b.fail(err)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				ok.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	secs := since(start)
	b.res.HeadRequests, b.res.HeadErrors = ok.Load(), bad.Load()
	b.res.HeadRequestsPerS = float64(ok.Load()) / secs
	b.res.HeadP50Ms, b.res.HeadP99Ms = percentile(lat, 0.5), percentile(lat, 0.99)
	if bad.Load() > 0 {
		return fmt.Errorf("%d HEAD requests failed", bad.Load())
	}
	return nil
}

// large pushes one large layer (timed alone), an image around it, and pulls
// the layer back (timed).
func (b *bench) large(ctx context.Context) error {
	if b.cfg.LargeMB == 0 {
		return nil
	}
	l, err := newGenLayer(b.cfg.Seed, int64(b.cfg.LargeMB)<<20)
	if err != nil {
		return err
	}
	repo := b.reg.Repo("bench/large")
	if b.cfg.DDFile != "" {
		if b.res.DDBeforeMBPerS, err = DD(ctx, b.cfg.DDFile, b.cfg.LargeMB); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := remote.WriteLayer(repo, l, b.opts...); err != nil {
		return fmt.Errorf("push the large layer: %w", err)
	}
	b.res.LargeBytes = l.size
	b.res.LargePushS = since(start)
	b.res.LargePushMBPerS = mbps(l.size, b.res.LargePushS)
	if b.cfg.DDFile != "" {
		if b.res.DDAfterMBPerS, err = DD(ctx, b.cfg.DDFile, b.cfg.LargeMB); err != nil {
			return err
		}
		b.res.DDMBPerS = (b.res.DDBeforeMBPerS + b.res.DDAfterMBPerS) / 2
	}
	img, err := newImage([]v1.Layer{l}, map[string]string{"org.kvreg.bench.large": strconv.Itoa(b.cfg.LargeMB)})
	if err != nil {
		return err
	}
	if err := remote.Write(repo.Tag("1"), img, b.opts...); err != nil {
		return fmt.Errorf("push the large image: %w", err)
	}
	var secs []float64
	for i := 0; i < b.cfg.LargePulls; i++ {
		s, err := b.pullLarge(ctx, repo.Digest(l.digest.String()), l.size)
		if err != nil {
			return err
		}
		secs = append(secs, s)
		b.res.LargePullsMBPerS = append(b.res.LargePullsMBPerS, mbps(l.size, s))
	}
	sort.Float64s(secs)
	b.res.LargePullS = secs[len(secs)/2]
	b.res.LargePullMBPerS = mbps(l.size, b.res.LargePullS)
	return nil
}

// pullLarge reads the large layer back as `crane blob` does: a fresh
// go-containerregistry transport (its DefaultTransport: a new connection,
// the /v2/ ping, then the GET) and remote.Layer's reader, which verifies
// the digest as it reads. It returns the seconds taken.
func (b *bench) pullLarge(ctx context.Context, ref name.Digest, size int64) (float64, error) {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // loopback only: never through a proxy
	defer t.CloseIdleConnections()
	start := time.Now()
	rl, err := remote.Layer(ref, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous),
		remote.WithTransport(t), remote.WithUserAgent("kvreg-bench"))
	if err != nil {
		return 0, err
	}
	rc, err := rl.Compressed()
	if err != nil {
		return 0, fmt.Errorf("pull the large layer: %w", err)
	}
	n, err := io.Copy(io.Discard, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("pull the large layer: %w", err)
	}
	if n != size {
		return 0, fmt.Errorf("pulled %d bytes of the large layer, want %d", n, size)
	}
	return since(start), nil
}

func (b *bench) memory(context.Context) error {
	if b.cfg.PID == 0 {
		return nil
	}
	m, err := ReadMemory(b.cfg.PID)
	if err != nil {
		return err
	}
	b.res.RSSKB, b.res.RSSAnonKB, b.res.RSSFileKB, b.res.HWMKB = m["VmRSS"], m["RssAnon"], m["RssFile"], m["VmHWM"]
	return nil
}

// delete removes every other image of each repository by manifest digest,
// then waits until the bytes of their own blobs are gone from DataDir,
// running AfterDelete meanwhile.
func (b *bench) delete(ctx context.Context) error {
	var victims []*image
	for _, im := range b.images {
		if im.deleted {
			victims = append(victims, im)
			b.res.ReclaimExpectedBytes += im.own
		}
	}
	b.res.DeletedImages = len(victims)
	var before map[string]int64
	if b.cfg.DataDir != "" {
		var err error
		if before, err = Snapshot(b.cfg.DataDir); err != nil {
			return err
		}
	}
	var failed atomic.Int64
	start := time.Now()
	each(b.cfg.Clients, victims, func(_ int, im *image) {
		ref := b.reg.Repo(im.repo).Digest(im.digest.String())
		if err := remote.Delete(ref, b.opts...); err != nil {
			failed.Add(1)
			b.fail(fmt.Errorf("delete %s: %w", ref, err))
		}
	})
	b.res.DeleteSeconds = since(start)
	if failed.Load() > 0 {
		return fmt.Errorf("%d DELETEs failed", failed.Load())
	}

	var cmdDone chan error
	if b.cfg.AfterDelete != "" {
		cmdDone = make(chan error, 1)
		cmd := exec.CommandContext(ctx, "sh", "-c", b.cfg.AfterDelete)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		go func() {
			cmdStart := time.Now()
			err := cmd.Run()
			s := since(cmdStart)
			b.res.AfterDeleteSeconds = &s
			cmdDone <- err
		}()
	}
	var werr error
	if before != nil {
		timeout := time.After(b.cfg.ReclaimTimeout)
		for {
			freed, err := Freed(b.cfg.DataDir, before)
			if err != nil {
				werr = err
				break
			}
			if freed >= b.res.ReclaimExpectedBytes {
				s := since(start)
				b.res.ReclaimSeconds, b.res.ReclaimedBytes = &s, &freed
				break
			}
			select {
			case <-timeout:
				b.res.ReclaimTimedOut, b.res.ReclaimedBytes = true, &freed
				werr = fmt.Errorf("after %v only %d of %d bytes are back", b.cfg.ReclaimTimeout, freed, b.res.ReclaimExpectedBytes)
			case <-ctx.Done():
				werr = ctx.Err()
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
	}
	if cmdDone != nil {
		if err := <-cmdDone; err != nil {
			b.res.AfterDeleteError = err.Error()
			if werr == nil {
				werr = fmt.Errorf("-after-delete: %w", err)
			}
		}
	}
	if before != nil && werr == nil {
		// What the wait saw may be less than what ended up gone (a GC pass
		// goes on after the threshold): report the final figure.
		if freed, err := Freed(b.cfg.DataDir, before); err == nil {
			b.res.ReclaimedBytes = &freed
		}
	}
	return werr
}

// verify checks that the kept images are whole and the deleted ones gone.
func (b *bench) verify(ctx context.Context) error {
	err := b.verifyErr(ctx)
	b.res.VerifyOK = err == nil
	if err != nil {
		b.res.VerifyError = err.Error()
	}
	return err
}

func (b *bench) verifyErr(ctx context.Context) error {
	if err := b.waitReady(ctx, b.cfg.WaitReady); err != nil {
		return err
	}
	client, err := b.rawClient(ctx)
	if err != nil {
		return err
	}
	status := func(method, u string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, method, u, nil)
		req.Header.Set("Accept", string(types.OCIManifestSchema1))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, k := range b.keptBlobs() {
		if s, err := status(http.MethodHead, b.blobURL(k.repo, k.digest)); err != nil || s != http.StatusOK {
			return fmt.Errorf("kept blob %s in %s: status %d, %v", k.digest, k.repo, s, err)
		}
	}
	for _, im := range b.images {
		u := b.cfg.URL + "/v2/" + im.repo + "/manifests/" + im.digest.String()
		s, err := status(http.MethodGet, u)
		if err != nil {
			return err
		}
		if want := map[bool]int{false: http.StatusOK, true: http.StatusNotFound}[im.deleted]; s != want {
			return fmt.Errorf("manifest %s of %s (deleted: %v): status %d, want %d", im.digest, im.repo, im.deleted, s, want)
		}
	}
	return nil
}
