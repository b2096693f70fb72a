package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// asset is an embedded file served under a name holding its content hash,
// so that it may be cached for ever and a new build's is fetched anew.
type asset struct {
	body        []byte
	contentType string
}

var (
	assets     = map[string]asset{}  // hashed name -> file
	assetNames = map[string]string{} // file name -> hashed name
)

func init() {
	for _, f := range []struct{ name, ctype string }{
		{"style.css", "text/css; charset=utf-8"},
		{"ui.js", "text/javascript; charset=utf-8"},
	} {
		b, err := staticFS.ReadFile("static/" + f.name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(f.name)
		hashed := strings.TrimSuffix(f.name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		assets[hashed] = asset{body: b, contentType: f.ctype}
		assetNames[f.name] = hashed
	}
}

// staticURL is the path of an embedded file.
func staticURL(name string) string { return Prefix + "static/" + assetNames[name] }

func serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := assets[name]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", itoa(int64(len(a.body))))
	if r.Method == http.MethodGet {
		w.Write(a.body)
	}
}
