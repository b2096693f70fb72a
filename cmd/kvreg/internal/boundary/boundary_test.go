package boundary

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/kvreg/kvreg"

// boltBackend is the one package that may import bbolt: the bbolt
// implementation of the ordered key-value store under kv.Tx.
const boltBackend = module + "/kv/bolt"

// pgBackend is the one package, with its test helper pgtest under it, that
// may import pgx: the PostgreSQL implementation of the same store.
const pgBackend = module + "/kv/pg"

// s3Driver is the one package, with its test helper s3test under it, that
// may import an S3 client: the S3 implementation of the blob driver.
const s3Driver = module + "/blobs/s3"

// pgtest starts PostgreSQL for tests; no code but tests imports it.
const pgtest = pgBackend + "/pgtest"

// s3test starts an S3 server for tests; no code but tests imports it.
const s3test = s3Driver + "/s3test"

// policy is the operator's rules on repositories: a pure leaf (no kvreg
// package, no storage, no HTTP, no operating system), so every layer may
// import it, api/auth for its glob matcher.
const policy = module + "/refcount/policy"

// regtest opens registries for tests; it may use the operating system (a
// temporary directory, the environment) because no code but tests imports it.
const regtest = module + "/refcount/regtest"

// racetest is the HTTP client of the race tests; no code but tests imports it.
const racetest = module + "/api/racetest"

// authtest makes htpasswd accounts for tests; no code but tests imports it.
const authtest = module + "/api/auth/authtest"

// pkg is what `go list -json` says of a package of the module.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// within reports whether path is root or a package under it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// rule forbids the packages in from importing the packages under imports.
// tests says whether the package's test files count too: they do for the
// layering between kvreg's packages and for bbolt (the tests go through
// the same seams as the code), not for os, syscall and net/http, which
// tests use to set up files and servers.
type rule struct {
	what    string
	in      func(path string) bool
	imports []string
	tests   bool
}

func under(roots ...string) func(string) bool {
	return func(p string) bool {
		for _, r := range roots {
			if within(p, module+"/"+r) {
				return true
			}
		}
		return false
	}
}

func not(f func(string) bool) func(string) bool { return func(p string) bool { return !f(p) } }

func except(f func(string) bool, paths ...string) func(string) bool {
	return func(p string) bool {
		for _, x := range paths {
			if p == x {
				return false
			}
		}
		return f(p)
	}
}

func everywhere(string) bool { return true }

var rules = []rule{
	{"only " + rel(boltBackend) + " imports bbolt", func(p string) bool { return p != boltBackend }, []string{"go.etcd.io/bbolt"}, true},
	{"only " + rel(pgBackend) + " imports pgx", func(p string) bool { return !within(p, pgBackend) }, []string{"github.com/jackc/pgx"}, true},
	{"only " + rel(s3Driver) + " imports the S3 client", func(p string) bool { return !within(p, s3Driver) }, []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go", "github.com/minio/minio-go"}, true},
	{"only tests (and regtest, which only tests import) import " + rel(pgtest), except(everywhere, regtest), []string{pgtest}, false},
	{"only tests (and regtest, which only tests import) import " + rel(s3test), except(everywhere, regtest), []string{s3test}, false},
	// The S3 driver's client speaks HTTP; it serves nothing.
	{"net/http only in api, cmd and the S3 driver", not(under("api", "cmd", rel(s3Driver))), []string{"net/http"}, false},
	{"no syscall in api", under("api"), []string{"syscall"}, false},
	{"no syscall in refcount", under("refcount"), []string{"syscall"}, false},
	{"no os in refcount", except(under("refcount"), regtest), []string{"os"}, false},
	{"only tests import " + rel(regtest), everywhere, []string{regtest}, false},
	{"only tests import " + rel(racetest), everywhere, []string{racetest}, false},
	{"only tests import " + rel(authtest), everywhere, []string{authtest}, false},
	{"refcount does not import api", under("refcount"), []string{module + "/api"}, true},
	{"kv imports neither blobs nor refcount nor api", under("kv"), []string{module + "/blobs", module + "/refcount", module + "/api"}, true},
	{"blobs imports neither kv nor refcount nor api", under("blobs"), []string{module + "/kv", module + "/refcount", module + "/api"}, true},
	// Credentials: the rules (api/auth, api/auth/token) know no storage and
	// no HTTP; api/authstore keeps them in kv and knows no HTTP either.
	{"api/auth imports neither kv nor refcount nor blobs", under("api/auth"), []string{module + "/kv", module + "/refcount", module + "/blobs", module + "/api/authstore"}, true},
	{"api/authstore imports neither refcount nor blobs nor package api", under("api/authstore"), []string{module + "/refcount", module + "/blobs"}, true},
	// The upstream client speaks HTTP to other registries and stores
	// nothing: the cache that calls it stores. Its tests start a real
	// kvreg as the upstream, so they may import package api and refcount.
	{"api/upstream imports neither kv nor refcount nor blobs nor api", under("api/upstream"), []string{module + "/kv", module + "/refcount", module + "/blobs", module + "/api"}, false},
	// The web pages read through refcount and learn the caller's rights
	// from package api (which mounts them), through their options; see
	// TestUIBelowAPI for package api itself. Their tests drive a real
	// server, so they may import api.
	{"api/ui imports neither kv nor blobs nor a backend", under("api/ui"), []string{module + "/kv", module + "/blobs", "go.etcd.io/bbolt", "github.com/jackc/pgx", "github.com/aws/aws-sdk-go-v2", "database/sql"}, false},
	{rel(policy) + " is a leaf: no kvreg package, no os, no HTTP", under(rel(policy)), []string{module, "os", "net/http", "syscall"}, true},
	{"no net/http in api/auth or api/authstore", under("api/auth", "api/authstore"), []string{"net/http"}, false},
}

func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// Each package imports only what its layer may: bbolt and pgx behind
// their kv backends alone, HTTP in api and cmd, no operating-system calls in the
// reference model or the HTTP handlers, and no import back up the layers
// (api over refcount over kv and blobs, which know nothing of each other).
func TestPackageBoundaries(t *testing.T) {
	pkgs := listModule(t)
	for _, want := range []string{"api", "blobs", "kv", "refcount", "cmd/kvreg", rel(boltBackend), rel(pgBackend), rel(pgtest), rel(s3Driver)} {
		if _, ok := pkgs[module+"/"+want]; !ok {
			t.Errorf("package %s is not in the module: the rules below would check nothing there", want)
		}
	}
	if p, ok := pkgs[boltBackend]; ok && !importsAny(p.Imports, "go.etcd.io/bbolt") {
		t.Errorf("%s does not import bbolt: is boltBackend still the bbolt backend?", rel(boltBackend))
	}
	if p, ok := pkgs[pgBackend]; ok && !importsAny(p.Imports, "github.com/jackc/pgx") {
		t.Errorf("%s does not import pgx: is pgBackend still the PostgreSQL backend?", rel(pgBackend))
	}
	if p, ok := pkgs[s3Driver]; ok && !importsAny(p.Imports, "github.com/aws/aws-sdk-go-v2") {
		t.Errorf("%s does not import aws-sdk-go-v2: is s3Driver still the S3 blob driver?", rel(s3Driver))
	}
	paths := make([]string, 0, len(pkgs))
	for path := range pkgs {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, r := range rules {
		for _, path := range paths {
			p := pkgs[path]
			if !r.in(path) {
				continue
			}
			check := func(imports []string, where string) {
				for _, imp := range imports {
					if within(imp, policy) && !within(path, policy) {
						continue // the leaf every layer may import
					}
					for _, bad := range r.imports {
						if within(imp, bad) {
							t.Errorf("%s: %s imports %s (%s)", r.what, rel(path), imp, where)
						}
					}
				}
			}
			check(p.Imports, "code")
			if r.tests {
				check(p.TestImports, "tests")
				check(p.XTestImports, "tests")
			}
		}
	}
}

// api/authstore is under api but below it: it may import api/auth, never
// package api itself (which calls it).
func TestAuthstoreBelowAPI(t *testing.T) {
	p, ok := listModule(t)[module+"/api/authstore"]
	if !ok {
		t.Fatal("api/authstore not found")
	}
	for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
		if imp == module+"/api" {
			t.Errorf("api/authstore imports package api")
		}
	}
}

// api/ui is under api but below it: package api mounts it, so its code
// may not import package api (its tests may: they run a real server).
func TestUIBelowAPI(t *testing.T) {
	p, ok := listModule(t)[module+"/api/ui"]
	if !ok {
		t.Fatal("api/ui not found")
	}
	for _, imp := range p.Imports {
		if imp == module+"/api" {
			t.Errorf("api/ui imports package api")
		}
	}
}

func importsAny(imports []string, root string) bool {
	for _, imp := range imports {
		if within(imp, root) {
			return true
		}
	}
	return false
}
