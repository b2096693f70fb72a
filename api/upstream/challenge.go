package upstream

import (
	"fmt"
	"strings"
)

// challenge is one challenge of a WWW-Authenticate header: its scheme
// (lower case) and parameters (names in lower case).
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges parses WWW-Authenticate headers (RFC 9110 11.6.1):
// challenges separated by commas, each a scheme and comma-separated
// name=value parameters, values tokens or quoted strings (which may hold
// commas and escaped quotes). Anything else is an error.
func parseChallenges(headers []string) ([]challenge, error) {
	var out []challenge
	for _, h := range headers {
		p := &challengeParser{s: h}
		cs, err := p.parse()
		if err != nil {
			return nil, fmt.Errorf("%w: WWW-Authenticate %q: %v", ErrInvalid, h, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) parse() ([]challenge, error) {
	var out []challenge
	for {
		p.skip(" \t,")
		if p.i == len(p.s) {
			return out, nil
		}
		name := p.token()
		if name == "" {
			return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
		}
		p.skip(" \t")
		if p.i == len(p.s) || p.s[p.i] != '=' {
			out = append(out, challenge{scheme: strings.ToLower(name), params: map[string]string{}})
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("parameter %q before any scheme", name)
		}
		p.i++ // '='
		p.skip(" \t")
		var val string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			v, err := p.quoted()
			if err != nil {
				return nil, err
			}
			val = v
		} else if val = p.token(); val == "" {
			return nil, fmt.Errorf("parameter %q without a value", name)
		}
		params := out[len(out)-1].params
		name = strings.ToLower(name)
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("parameter %q twice", name)
		}
		params[name] = val
		p.skip(" \t")
		if p.i < len(p.s) && p.s[p.i] != ',' {
			return nil, fmt.Errorf("unexpected %q after parameter %q", p.s[p.i], name)
		}
	}
}

func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 9110 token (possibly empty).
func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoted reads a quoted string, its escapes undone.
func (p *challengeParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.i == len(p.s) {
				return "", fmt.Errorf("unterminated quoted string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated quoted string")
}
