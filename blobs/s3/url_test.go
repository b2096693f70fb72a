package s3

import (
	"errors"
	"testing"
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
	for _, bad := range []string{
		"s3://", "http://images", "s3://key:secret@images", "s3://images?endpoint=ftp://x",
		"s3://images?path-style=maybe", "s3://images?bucket=other", "s3://images?endpoint=http://",
	} {
		if _, err := ParseURL(bad); !errors.Is(err, ErrURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrURL", bad, err)
		}
	}
}
