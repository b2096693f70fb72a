package main

import "testing"

// The web UI is on by default; --ui=false, KVREG_UI=false or `ui: false`
// in the file turn it off, and the API's configuration follows.
func TestConfigUI(t *testing.T) {
	for _, c := range []struct {
		name string
		env  string
		args []string
		want bool
	}{
		{"default", "", nil, true},
		{"flag", "", []string{"--ui=false"}, false},
		{"file", "", []string{"--config", writeFile(t, "kvreg.yaml", "ui: false\n")}, false},
		{"flag over file", "", []string{"--ui=true", "--config", writeFile(t, "kvreg.yaml", "ui: false\n")}, true},
		{"environment (last: it stays set)", "false", nil, false},
	} {
		if c.env != "" {
			t.Setenv("KVREG_UI", c.env)
		}
		cfg, err := resolve(t, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ac, err := apiConfig(cfg, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cfg.ui != c.want || ac.UI != c.want {
			t.Errorf("%s: ui %v, api.Config.UI %v, want %v", c.name, cfg.ui, ac.UI, c.want)
		}
	}
}
