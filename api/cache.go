package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvreg/kvreg/api/upstream"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/manifest"
	"github.com/opencontainers/go-digest"
)

// The pull-through cache: a read of a mirror's cached repository that
// misses fetches the content from the upstream, verifies it and stores it
// as a push would (verified blob commits, then the manifest with its tag),
// so that cached images are ordinary records whose references the
// reference counts follow. A tag is asked upstream again once its answer
// is older than the mirror's recheck; a pull by digest never goes upstream
// once stored. When the upstream cannot be reached or refuses (429, 5xx),
// what is stored is served.

// cache is the server's pull-through cache state.
type cache struct {
	clients map[string]*upstream.Client // by mirror prefix
	flights flights
	clock   func() time.Time
	log     *slog.Logger
	// evict asks for an eviction pass after a fill (nil: no budget).
	evict   func()
	metrics *cacheMetrics
}

// newCache makes the upstream clients of the mirrors. A mirror whose
// client cannot be made (CheckMirrors let its URL through, so it cannot
// happen) answers 503 on a miss.
func newCache(ms mirrors, log *slog.Logger) *cache {
	c := &cache{clients: map[string]*upstream.Client{}, clock: time.Now, log: log}
	for _, m := range ms {
		cl, err := upstream.New(upstream.Config{URL: m.URL, Username: m.Username, Password: m.Password, UserAgent: "kvreg"})
		if err != nil {
			log.Error("mirror unusable", "mirror", m.Prefix, "err", err)
			continue
		}
		c.clients[m.Prefix] = cl
	}
	return c
}

// client is the upstream client of mr's mirror.
func (c *cache) client(mr *mirrorRoute) (*upstream.Client, error) {
	cl := c.clients[mr.m.Prefix]
	if cl == nil {
		return nil, fmt.Errorf("%w: mirror %q has no client", upstream.ErrUnavailable, mr.m.Prefix)
	}
	return cl, nil
}

// evictor returns what keeps the cached content within maxBytes after a
// fill: an eviction pass, run by the request whose fill asked for it; a
// fill that asks while one runs leaves it to that one, which passes once
// more. So no pass outlives the requests, and passes never overlap.
func (s *Server) evictor(maxBytes int64) func() {
	var mu sync.Mutex
	running, again := false, false
	return func() {
		mu.Lock()
		if running {
			again = true
			mu.Unlock()
			return
		}
		running = true
		mu.Unlock()
		for {
			rep, err := s.reg.EvictCache(maxBytes)
			if err != nil {
				s.cfg.Logger.Error("cache eviction", "err", err)
			} else if rep.Images > 0 {
				s.metrics.reclaimed.Add(float64(rep.Freed))
				s.cache.metrics.evictions.Add(float64(rep.Images))
				s.cache.metrics.evicted.Add(float64(rep.Freed))
				s.cfg.Logger.Info("cache eviction", "images", rep.Images, "freed", rep.Freed, "evicted", rep.Evicted)
			}
			mu.Lock()
			if !again {
				running = false
				mu.Unlock()
				return
			}
			again = false
			mu.Unlock()
		}
	}
}

// upstreamError turns an upstream failure on a miss into the client's
// answer: not found upstream is not found here; an upstream that cannot
// be reached, or that refuses kvreg, is 503.
func upstreamError(notFound kind, what string, err error) error {
	switch {
	case errors.Is(err, upstream.ErrNotFound):
		return apiErr(notFound, "%s: not found upstream", what)
	case errors.Is(err, upstream.ErrUnavailable):
		return apiErr(kUnavailable, "%s: the upstream registry is unavailable (%v); nothing cached to serve", what, err)
	case errors.Is(err, upstream.ErrDenied):
		return apiErr(kUnavailable, "%s: the upstream registry refused kvreg's request (%v)", what, err)
	case errors.Is(err, upstream.ErrDigestMismatch), errors.Is(err, upstream.ErrTooLarge), errors.Is(err, upstream.ErrInvalid):
		return apiErr(kUnavailable, "%s: the upstream registry sent content kvreg does not store (%v)", what, err)
	}
	var se *upstream.StatusError
	if errors.As(err, &se) {
		return apiErr(kUnavailable, "%s: the upstream registry answered %d (%v)", what, se.Status, err)
	}
	return err
}

// cachedManifest answers GET and HEAD of a manifest of a cached
// repository: from the store when it has it (and, by tag, when the tag's
// answer is fresh or the upstream cannot say), else fetched from the
// upstream and filled (see fetchAndFill).
func (s *Server) cachedManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	d, tag, aerr := reference(rt.ref)
	if aerr != nil {
		return aerr
	}
	mr := rt.mirror
	ctx := r.Context()
	local, lerr := s.reg.GetManifest(rt.name, rt.ref, false)
	if lerr != nil && !errors.Is(lerr, refcount.ErrManifestUnknown) && !errors.Is(lerr, refcount.ErrNameUnknown) {
		return lerr
	}
	have := lerr == nil
	cm := s.cache.metrics
	var fetched *upstream.Manifest
	miss := func(ref, tag string) error {
		cm.misses.WithLabelValues("manifest").Inc()
		m, err := s.fetchAndFill(ctx, mr, ref, tag)
		if err != nil {
			return upstreamError(kManifestUnknown, "manifest "+ref, err)
		}
		fetched = &m
		return nil
	}
	switch {
	case d != "" && have:
		// By digest: stored content never changes.
		cm.hits.WithLabelValues("manifest").Inc()
	case d != "":
		if err := miss(d.String(), ""); err != nil {
			return err
		}
	case !have:
		if err := miss(tag, tag); err != nil {
			return err
		}
	default:
		checked, _, ok, err := s.reg.CheckedTag(rt.name, tag)
		if err != nil {
			return err
		}
		if ok && s.cache.clock().Sub(checked) < mr.m.Recheck {
			cm.hits.WithLabelValues("manifest").Inc()
			break
		}
		cm.misses.WithLabelValues("tag_recheck").Inc()
		up, err := s.recheckTag(ctx, mr, tag, local)
		if err != nil {
			return err
		}
		if up != "" {
			if err := miss(up.String(), tag); err != nil {
				return err
			}
		}
	}
	var mt string
	var dg digest.Digest
	var body []byte
	var size int64
	if fetched != nil {
		// What the upstream answered (verified against its digest), stored
		// by now or being stored.
		mt, dg, body, size = fetched.MediaType, fetched.Digest, fetched.Bytes, int64(len(fetched.Bytes))
	} else {
		info, err := s.reg.GetManifest(rt.name, rt.ref, r.Method != http.MethodHead)
		if err != nil {
			return err
		}
		mt, dg, body, size = info.MediaType, info.Digest, info.Content, info.Size
		if err := s.reg.TouchCached(rt.name, info.Digest, s.cache.clock()); err != nil {
			s.cfg.Logger.Warn("recording a cached image's pull", "repo", rt.name, "digest", info.Digest, "err", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	setDigestHeaders(h, dg)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
		s.pulled(r, rt, refcount.ManifestInfo{Digest: dg, MediaType: mt, Size: size})
	}
	return nil
}

// recheckTag asks the upstream what tag names now: the same digest keeps
// what is stored (checked again later); another digest is returned, to be
// fetched and the tag moved. When the upstream cannot say, what is stored
// stays served (no digest returned).
func (s *Server) recheckTag(ctx context.Context, mr *mirrorRoute, tag string, local refcount.ManifestInfo) (digest.Digest, error) {
	cl, err := s.cache.client(mr)
	if err != nil {
		return "", upstreamError(kManifestUnknown, "manifest "+tag, err)
	}
	up, _, _, err := cl.HeadManifest(ctx, mr.upstream, tag)
	if err != nil {
		if !errors.Is(err, upstream.ErrNotFound) {
			s.cfg.Logger.Warn("upstream unavailable: serving the cached tag", "mirror", mr.m.Prefix, "repo", mr.local, "tag", tag, "err", err)
			return "", nil
		}
		return "", upstreamError(kManifestUnknown, "manifest "+tag, err)
	}
	if up == local.Digest {
		return "", s.reg.SetCheckedTag(mr.local, tag, up, s.cache.clock())
	}
	return up, nil
}

// syncFillBytes: a miss of an image manifest whose blobs add up to at most
// this is filled before the answer; an index, or a larger image, is
// answered with the upstream's (verified) bytes at once and filled in the
// background, so that a client does not wait for a whole large image
// before its first byte (its blob requests join the fills).
const syncFillBytes = 64 << 20

// fetchAndFill answers a miss of manifest ref (a digest or, with tag, the
// tag): it fetches the manifest and fills it, before returning for a small
// image, in the background otherwise. It returns the manifest, so that the
// caller can serve it whether or not it is stored yet.
func (s *Server) fetchAndFill(ctx context.Context, mr *mirrorRoute, ref, tag string) (upstream.Manifest, error) {
	m, p, err := s.fetchManifest(ctx, mr, ref)
	if err != nil {
		return upstream.Manifest{}, err
	}
	var total int64
	for _, b := range p.Blobs {
		total += p.Sizes[b]
	}
	fill := func(ctx context.Context) error {
		return s.cache.flights.do(mr.local+"@"+m.Digest.String()+":"+tag, func() error {
			return s.fillParsed(ctx, mr, m, p, tag)
		})
	}
	if len(p.Children) == 0 && total <= syncFillBytes {
		return m, fill(context.WithoutCancel(ctx))
	}
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		if err := fill(context.WithoutCancel(ctx)); err != nil {
			s.cfg.Logger.Warn("cache fill", "mirror", mr.m.Prefix, "repo", mr.local, "digest", m.Digest, "err", err)
		}
	}()
	return m, nil
}

// fillManifest stores the upstream's manifest ref (a digest) in the cached
// repository, with everything it references first, tagged tag if given;
// once per (repository, ref) however many requests ask at once.
func (s *Server) fillManifest(ctx context.Context, mr *mirrorRoute, ref, tag string) error {
	key := mr.local + "@" + ref + ":" + tag
	return s.cache.flights.do(key, func() error {
		return s.fillManifestNow(context.WithoutCancel(ctx), mr, ref, tag)
	})
}

func (s *Server) fillManifestNow(ctx context.Context, mr *mirrorRoute, ref, tag string) error {
	m, p, err := s.fetchManifest(ctx, mr, ref)
	if err != nil {
		return err
	}
	return s.fillParsed(ctx, mr, m, p, tag)
}

// fetchManifest gets manifest ref from mr's upstream, verified, and parses
// it as a push of it would be.
func (s *Server) fetchManifest(ctx context.Context, mr *mirrorRoute, ref string) (upstream.Manifest, *manifest.Parsed, error) {
	cl, err := s.cache.client(mr)
	if err != nil {
		return upstream.Manifest{}, nil, err
	}
	m, err := cl.Manifest(ctx, mr.upstream, ref)
	if err != nil {
		return upstream.Manifest{}, nil, err
	}
	p, err := manifest.Parse(m.MediaType, m.Bytes)
	if err != nil {
		return upstream.Manifest{}, nil, fmt.Errorf("%w: manifest %s of %s: %v", upstream.ErrInvalid, m.Digest, mr.upstream, err)
	}
	return m, p, nil
}

// fillParsed stores manifest m (parsed as p) and what it references.
func (s *Server) fillParsed(ctx context.Context, mr *mirrorRoute, m upstream.Manifest, p *manifest.Parsed, tag string) error {
	for _, child := range p.Children {
		if _, err := s.reg.GetManifest(mr.local, child, false); err == nil {
			continue
		}
		if err := s.fillManifest(ctx, mr, child, ""); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(p.Blobs))
	sem := make(chan struct{}, 4)
	for _, b := range p.Blobs {
		if p.Optional[b] {
			continue
		}
		d := digest.Digest(b)
		if _, err := s.reg.StatBlob(mr.local, d, false, ""); err == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- s.fillBlob(ctx, mr, d, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	if _, err := s.reg.PutManifest(mr.local, m.Digest, tags, m.MediaType, m.Bytes, ""); err != nil {
		return err
	}
	now := s.cache.clock()
	if err := s.reg.MarkFetched(mr.local, m.Digest, now); err != nil {
		return err
	}
	if tag != "" {
		if err := s.reg.SetCheckedTag(mr.local, tag, m.Digest, now); err != nil {
			return err
		}
	}
	s.cache.log.Info("cached", "mirror", mr.m.Prefix, "repo", mr.local, "digest", m.Digest, "tag", tag)
	if s.cache.evict != nil {
		s.cache.evict()
	}
	return nil
}

// fillBlob stores the upstream's blob d in the cached repository, once
// however many requests ask at once; with to, the first request's
// client gets the bytes as they are stored (a client that goes away does
// not stop the fill).
func (s *Server) fillBlob(ctx context.Context, mr *mirrorRoute, d digest.Digest, to io.Writer) error {
	return s.cache.flights.do(mr.local+"@"+d.String(), func() error {
		cl, err := s.cache.client(mr)
		if err != nil {
			return err
		}
		body, size, err := cl.Blob(context.WithoutCancel(ctx), mr.upstream, d)
		if err != nil {
			return err
		}
		defer body.Close()
		var src io.Reader = upstream.VerifyingReader(body, d, size)
		if to != nil {
			src = io.TeeReader(src, to)
		}
		if _, err := s.reg.PutBlob(mr.local, d, src, size, s.cfg.MaxBlobBytes); err != nil {
			return err
		}
		return nil
	})
}

// clientBuffer bounds what a fill holds for the client that started it,
// in chunks as the fill reads them: a client slower than the upstream by
// more than this is dropped (its response cut) rather than slowing the
// fill, which other pulls may be waiting on.
const clientBuffer = 16

// clientFeed hands a fill's bytes to its client from a goroutine of its
// own, so that a client that stops reading never holds the fill.
type clientFeed struct {
	ch      chan []byte
	done    chan struct{}
	dropped atomic.Bool
}

func newClientFeed(w io.Writer) *clientFeed {
	f := &clientFeed{ch: make(chan []byte, clientBuffer), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for b := range f.ch {
			if f.dropped.Load() {
				continue
			}
			if _, err := w.Write(b); err != nil {
				f.dropped.Store(true)
			}
		}
	}()
	return f
}

// Write never blocks and never fails: the fill goes on whatever the client.
func (f *clientFeed) Write(p []byte) (int, error) {
	if f.dropped.Load() {
		return len(p), nil
	}
	select {
	case f.ch <- bytes.Clone(p):
	default:
		f.dropped.Store(true)
	}
	return len(p), nil
}

// close waits until the client has what was handed over (or was dropped)
// and reports whether it got all of it.
func (f *clientFeed) close() bool {
	close(f.ch)
	<-f.done
	return !f.dropped.Load()
}

// cachedBlob answers GET and HEAD of a blob of a cached repository: from
// the store, or, on a miss, from the upstream while it is stored.
func (s *Server) cachedBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if _, err := s.reg.StatBlob(rt.name, d, false, ""); err == nil {
		s.cache.metrics.hits.WithLabelValues("blob").Inc()
		return s.getBlob(w, r, route{kind: rt.kind, name: rt.name, ref: rt.ref})
	} else if !errors.Is(err, refcount.ErrBlobUnknown) {
		return err
	}
	s.cache.metrics.misses.WithLabelValues("blob").Inc()
	if r.Method == http.MethodHead {
		if err := s.fillBlob(r.Context(), rt.mirror, d, nil); err != nil {
			return upstreamError(kBlobUnknown, "blob "+d.String(), err)
		}
		return s.getBlob(w, r, route{kind: rt.kind, name: rt.name, ref: rt.ref})
	}
	started := false
	sw := &startWriter{w: w, start: func() {
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		setDigestHeaders(h, d)
		w.WriteHeader(http.StatusOK)
	}}
	feed := newClientFeed(sw)
	err = s.fillBlob(r.Context(), rt.mirror, d, feed)
	whole := feed.close()
	if err != nil || !whole {
		if started {
			// Headers gone: cut the response, the client sees it short.
			panic(http.ErrAbortHandler)
		}
		if err == nil {
			// Dropped before its first byte: what is stored now serves it.
			return s.getBlob(w, r, route{kind: rt.kind, name: rt.name, ref: rt.ref})
		}
		return upstreamError(kBlobUnknown, "blob "+d.String(), err)
	}
	if !started {
		// Another request filled it: serve what is stored.
		return s.getBlob(w, r, route{kind: rt.kind, name: rt.name, ref: rt.ref})
	}
	return nil
}

// startWriter sends the response's headers before its first byte.
type startWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.start()
	}
	return s.w.Write(p)
}

// flights runs one fill per key at a time; those asking meanwhile wait for
// it and get its error.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	err  error
}

func (f *flights) do(key string, fn func() error) error {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	if c, ok := f.m[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.err
	}
	c := &flight{done: make(chan struct{})}
	f.m[key] = c
	f.mu.Unlock()
	c.err = fn()
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(c.done)
	return c.err
}
