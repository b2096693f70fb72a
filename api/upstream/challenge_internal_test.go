package upstream

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []challenge
	}{
		{[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		// Quoted commas and escapes, spaces, names in any case, a token value.
		{[]string{`bearer Realm = "http://r/t" , scope="repository:a:pull,push repository:b:pull", service=svc, error="x\"y"`},
			[]challenge{{"bearer", map[string]string{"realm": "http://r/t", "scope": "repository:a:pull,push repository:b:pull", "service": "svc", "error": `x"y`}}}},
		// Two challenges in one header, a third in another.
		{[]string{`Basic realm="kvreg", Bearer realm="http://r/t"`, `Negotiate`},
			[]challenge{{"basic", map[string]string{"realm": "kvreg"}}, {"bearer", map[string]string{"realm": "http://r/t"}}, {"negotiate", map[string]string{}}}},
		{[]string{""}, nil},
	} {
		got, err := parseChallenges(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{
		`Bearer realm="unterminated`, `Bearer realm="x\`, `realm="x"`, `Bearer realm=`, `Bearer realm="a" service="b"`,
		`Bearer realm="a", realm="b"`, `Bearer ;`, `Bearer realm=="x"`, `Bearer realm="a" ,,, x=`,
	} {
		if got, err := parseChallenges([]string{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v %v, want ErrInvalid", bad, got, err)
		}
	}
}

// Whatever the header, parsing ends without a panic.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer realm="https://a/t",service="s",scope="x"`, `Basic realm="r"`, `Bearer realm="a\"b", x=y`, `"`, `,=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := parseChallenges([]string{s})
		if err == nil {
			for _, c := range cs {
				if c.scheme == "" || c.params == nil {
					t.Fatalf("%q: challenge %+v", s, c)
				}
			}
		}
	})
}
