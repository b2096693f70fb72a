package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --blob-redirect and its lifetime come from a flag, KVREG_ variables or
// the file like every setting; a lifetime SigV4 cannot sign is refused.
func TestConfigBlobRedirect(t *testing.T) {
	cfg, err := resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.blobRedirect || cfg.blobRedirectTTL != 5*time.Minute {
		t.Fatalf("defaults: redirect %v for %v", cfg.blobRedirect, cfg.blobRedirectTTL)
	}
	cfg, err = resolve(t, "--config", writeFile(t, "kvreg.yaml", "blob-redirect: true\nblob-redirect-ttl: 90s\n"))
	if err != nil || !cfg.blobRedirect || cfg.blobRedirectTTL != 90*time.Second {
		t.Fatalf("from the file: %v, %+v", err, cfg)
	}
	t.Setenv("KVREG_BLOB_REDIRECT", "true")
	t.Setenv("KVREG_BLOB_REDIRECT_TTL", "2m")
	cfg, err = resolve(t)
	if err != nil || !cfg.blobRedirect || cfg.blobRedirectTTL != 2*time.Minute {
		t.Fatalf("from the environment: %v, %+v", err, cfg)
	}
	for _, ttl := range []string{"0s", "500ms", "169h"} {
		if _, err := resolve(t, "--blob-redirect-ttl", ttl); err == nil || !strings.Contains(err.Error(), "blob-redirect-ttl") {
			t.Errorf("--blob-redirect-ttl %s: %v", ttl, err)
		}
	}
}

// Blobs in a directory have no URL: kvreg serve --blob-redirect over one
// refuses to start, exit 2, saying why.
func TestRedirectRefusedWithDirectoryStore(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	expectRefusal(t, bin, "--blob-redirect needs a blob store that can presign", "serve", "--addr", "127.0.0.1:0", "--root", root, "--blob-redirect")
	expectRefusal(t, bin, "--blob-redirect needs", "serve", "--addr", "127.0.0.1:0", "--root", root, "--blob-redirect", "--blob-store", filepath.Join(root, "elsewhere"))
}
