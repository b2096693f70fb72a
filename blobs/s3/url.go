package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrURL: a blob store URL kvreg cannot read.
var ErrURL = errors.New("s3: invalid blob store URL")

// IsURL reports whether s names an S3 blob store (s3://...).
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// ParseURL reads s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=true
// into a Config; max-attempts=N and max-backoff=DURATION bound how long a
// request retries through an outage before kvreg answers 503. Credentials are not part of it: they come the usual AWS
// ways (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared config,
// instance roles).
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrURL, err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return Config{}, fmt.Errorf("%w: %q: want s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path-style=true]", ErrURL, s)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("%w: %q: credentials do not go in the URL (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)", ErrURL, s)
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path-style", "max-attempts", "max-backoff":
		default:
			return Config{}, fmt.Errorf("%w: %q: unknown parameter %q", ErrURL, s, k)
		}
	}
	cfg.Endpoint, cfg.Region = q.Get("endpoint"), q.Get("region")
	if cfg.Endpoint != "" {
		e, err := url.Parse(cfg.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return Config{}, fmt.Errorf("%w: endpoint %q: want http(s)://HOST[:PORT]", ErrURL, cfg.Endpoint)
		}
	}
	if v := q.Get("path-style"); v != "" {
		if cfg.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("%w: path-style=%q: want true or false", ErrURL, v)
		}
	}
	if v := q.Get("max-attempts"); v != "" {
		if cfg.MaxAttempts, err = strconv.Atoi(v); err != nil || cfg.MaxAttempts < 1 {
			return Config{}, fmt.Errorf("%w: max-attempts=%q: want a positive integer", ErrURL, v)
		}
	}
	if v := q.Get("max-backoff"); v != "" {
		if cfg.MaxBackoff, err = time.ParseDuration(v); err != nil || cfg.MaxBackoff <= 0 {
			return Config{}, fmt.Errorf("%w: max-backoff=%q: want a positive duration such as 2s", ErrURL, v)
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}
