package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/api/authstore"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
)

// secretLine is a robot secret: the prefix and 32 bytes of base64url.
var secretLine = regexp.MustCompile(`^kvreg_[A-Za-z0-9_-]{43}$`)

// Offline on bbolt: the store is opened by each command.
func TestTokenCommandsOffline(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	secret := tokenScenario(t, bin, []string{"--root", root}, "offline")
	checkTokenRecords(t, filepath.Join(root, refcount.DBFile), secret)
	// The file holds the secret's hash, never the secret.
	b, err := os.ReadFile(filepath.Join(root, refcount.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), strings.TrimPrefix(secret, auth.SecretPrefix)) {
		t.Fatal("the database file holds the robot's secret")
	}
}

// Online: the same commands through a running server's socket, and the
// server's fsck is clean beside robots and keys.
func TestTokenCommandsOnline(t *testing.T) {
	bin := buildKvreg(t)
	root := t.TempDir()
	s := startServer(t, bin, root)
	secret := tokenScenario(t, bin, []string{"--root", root}, "online")
	if out, errOut, code := run(t, bin, "fsck", "--root", root); code != 0 {
		t.Fatalf("fsck beside robots and keys: exit %d\n%s%s", code, out, errOut)
	}
	stopServer(t, s)
	checkTokenRecords(t, filepath.Join(root, refcount.DBFile), secret)
}

// Offline on PostgreSQL (--db).
func TestTokenCommandsPostgres(t *testing.T) {
	bin := buildKvreg(t)
	db := pgtest.NewDatabase(t)
	secret := tokenScenario(t, bin, []string{"--root", t.TempDir(), "--db", db}, "offline")
	checkTokenRecords(t, db, secret)
}

// tokenScenario creates robots ci (flags after its name) and bot (flags
// before), lists them, revokes ci, refuses malformed requests with exit
// 2, and rotates the signing key twice. It returns ci's secret.
func tokenScenario(t *testing.T, bin string, store []string, mode string) string {
	t.Helper()
	tok := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, bin, append(append([]string{"token"}, args...), store...)...)
	}
	out, errOut, code := run(t, bin, append(append([]string{"token", "create", "ci"}, store...), "--repos", "team/*,tools", "--actions", "push,pull", "--expires", "90d")...)
	if code != 0 || !strings.Contains(errOut, mode) {
		t.Fatalf("create ci: exit %d, want 0 %s\n%s%s", code, mode, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	secret := lines[len(lines)-1]
	if !secretLine.MatchString(secret) {
		t.Fatalf("create ci: last line %q is not a secret alone", secret)
	}
	if strings.Count(out+errOut, strings.TrimPrefix(secret, auth.SecretPrefix)) != 1 {
		t.Fatalf("create ci: the secret is printed more than once:\n%s%s", out, errOut)
	}
	out, errOut, code = tok("create", "--repos", "*", "--actions", "pull", "--expires", "720h", "bot")
	if code != 0 || !secretLine.MatchString(strings.TrimSpace(out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:])) {
		t.Fatalf("create bot: exit %d\n%s%s", code, out, errOut)
	}
	botSecret := strings.TrimSpace(out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:])
	if botSecret == secret {
		t.Fatal("two robots got the same secret")
	}

	out, errOut, code = tok("ls")
	if code != 0 || strings.Contains(out+errOut, secret[6:]) || strings.Contains(out, botSecret[6:]) {
		t.Fatalf("ls: exit %d, or it shows a secret\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`(?m)^NAME\s+REPOS\s+ACTIONS\s+STATUS\s+CREATED\s+EXPIRES\s+REVOKED\s+LAST USED$`,
		`(?m)^bot\s+\*\s+pull\s+active\s+\S+ \S+\s+\S+ \S+\s+-\s+-$`,
		`(?m)^ci\s+team/\*,tools\s+pull,push\s+active\s`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("ls: no line matching %s in\n%s", want, out)
		}
	}

	if out, errOut, code = tok("revoke", "ci"); code != 0 || !strings.Contains(out, "robot ci revoked") {
		t.Fatalf("revoke ci: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = tok("ls", "--json")
	var rs []authstore.RobotInfo
	if err := json.Unmarshal([]byte(out), &rs); code != 0 || err != nil || len(rs) != 2 {
		t.Fatalf("ls --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if rs[0].Name != "bot" || rs[0].Revoked != nil || rs[1].Name != "ci" || rs[1].Revoked == nil ||
		strings.Join(rs[1].Actions, ",") != "pull,push" || strings.Join(rs[1].Repos, ",") != "team/*,tools" ||
		rs[1].Expires.Sub(rs[1].Created).Hours() != 90*24 || rs[0].LastUsed != nil {
		t.Fatalf("ls --json after revoke: %s", out)
	}
	if out, _, _ = tok("ls"); !regexp.MustCompile(`(?m)^ci\s.*\srevoked\s`).MatchString(out) {
		t.Fatalf("ls after revoke:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create", "ci", "--repos", "x", "--actions", "pull", "--expires", "1d"}, 1, "robot exists"},
		{[]string{"revoke", "nobody"}, 1, "no such robot"},
		{[]string{"create", "Bad", "--repos", "x", "--actions", "pull", "--expires", "1d"}, 2, `name "Bad"`},
		{[]string{"create", "-x", "--repos", "x", "--actions", "pull", "--expires", "1d"}, 2, ""},
		{[]string{"create", "ok", "--repos", "team/*,x:y", "--actions", "pull", "--expires", "1d"}, 2, `repository pattern "x:y"`},
		{[]string{"create", "ok", "--repos", "", "--actions", "pull", "--expires", "1d"}, 2, "--repos is required"},
		{[]string{"create", "ok", "--repos", "x", "--actions", "pull,admin", "--expires", "1d"}, 2, `action "admin"`},
		{[]string{"create", "ok", "--repos", "x", "--actions", "pull", "--expires", "never"}, 2, `lifetime "never"`},
		{[]string{"create", "ok", "--repos", "x", "--actions", "pull"}, 2, "--expires is required"},
		{[]string{"create", "ok", "extra", "--repos", "x", "--actions", "pull", "--expires", "1d"}, 2, "name one robot"},
		{[]string{"create", "ok", "--repos", "x", "--actions", "pull", "--expires", "1d", "--nope", "1"}, 2, "nope"},
		{[]string{"revoke", "Bad"}, 2, `name "Bad"`},
	} {
		out, errOut, code := tok(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || secretLine.MatchString(strings.TrimSpace(out)) {
			t.Errorf("token %v: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}

	var kids []string
	for i := 0; i < 2; i++ {
		out, errOut, code = tok("rotate-key", "--json")
		var rot authstore.Rotation
		if err := json.Unmarshal([]byte(out), &rot); code != 0 || err != nil {
			t.Fatalf("rotate-key: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		if i == 0 && len(rot.Retired) != 0 || i == 1 && (len(rot.Retired) != 1 || rot.Retired[0].KID != kids[0]) {
			t.Fatalf("rotate-key %d retired %+v, want the previous key", i+1, rot.Retired)
		}
		kids = append(kids, rot.Current.KID)
	}
	return secret
}

// checkTokenRecords reads the store the scenario left: ci revoked with
// the secret's SHA-256, bot not, and two signing keys, the second current
// and the first retired, each a P-256 key whose thumbprint is its id.
func checkTokenRecords(t *testing.T, target, secret string) {
	t.Helper()
	db, err := kv.Open(target, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var robots []kv.Robot
	var keys []kv.AuthKey
	if err := db.View(func(tx *kv.Tx) error {
		if robots, err = tx.Robots(); err != nil {
			return err
		}
		keys, err = tx.AuthKeys()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	if len(robots) != 2 || robots[1].Name != "ci" || string(robots[1].Hash) != string(sum[:]) || robots[1].Revoked == 0 || robots[0].Revoked != 0 {
		t.Fatalf("robots %+v", robots)
	}
	r, ok, err := authstore.Robot(db, "ci")
	if err != nil || !ok || r.Login(secret, r.Created) == nil {
		t.Fatalf("revoked ci logs in: %+v %v %v", r, ok, err)
	}
	current, retired := 0, 0
	for _, k := range keys {
		pk, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
		if err != nil {
			t.Fatal(err)
		}
		ec, ok := pk.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("key %s is a %T", k.KID, pk)
		}
		if kid, err := token.Thumbprint(&ec.PublicKey); err != nil || kid != k.KID {
			t.Fatalf("key stored as %s has thumbprint %s (%v)", k.KID, kid, err)
		}
		if k.Retired == 0 {
			current++
		} else if k.Retired >= k.Created {
			retired++
		}
	}
	if len(keys) != 2 || current != 1 || retired != 1 {
		t.Fatalf("%d keys, %d current, %d retired; want 1 and 1", len(keys), current, retired)
	}
}
