package s3

import (
	"errors"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	cfg, err := ParseURL("s3://images/kvreg/prod?endpoint=http://127.0.0.1:7070&region=eu-west-1&path-style=true")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: "images", Prefix: "kvreg/prod", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", PathStyle: true}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
	if cfg, err := ParseURL("s3://images"); err != nil || cfg.Bucket != "images" || cfg.Prefix != "" || cfg.Region != "us-east-1" || cfg.PathStyle {
		t.Fatalf("bucket alone: %+v, %v", cfg, err)
	}
	if cfg, err := ParseURL("s3://images?max-attempts=3&max-backoff=250ms"); err != nil || cfg.MaxAttempts != 3 || cfg.MaxBackoff != 250*time.Millisecond {
		t.Fatalf("retry bounds: %+v, %v", cfg, err)
	}
	for _, bad := range []string{
		"s3://images?max-attempts=0", "s3://images?max-attempts=x", "s3://images?max-backoff=-1s", "s3://images?max-backoff=soon",
		"s3://", "http://images", "s3://key:secret@images", "s3://images?endpoint=ftp://x",
		"s3://images?path-style=maybe", "s3://images?bucket=other", "s3://images?endpoint=http://",
	} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrURL", bad, err)
		}
	}
}
