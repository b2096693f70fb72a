package cluster

import (
	"math/rand"
	"testing"
	"time"
)

// kill -9 of one replica under load: clients push images (small and
// multi-part layers, monolithic and chunked) and delete tags through
// haproxy; one replica is killed mid-load and stays down. Within 30 s the
// survivors have finished what it left half done: fsck of the shared
// database and bucket, run beside them, finds no damage and no pending
// work, and every acknowledged tag pulls byte for byte through haproxy.
//
// KVREG_CLUSTER_KILL_ROUNDS sets the number of rounds (a new cluster
// each; default 1).
func TestClusterKill9UnderLoad(t *testing.T) {
	rounds := envInt(t, "KVREG_CLUSTER_KILL_ROUNDS", 1)
	for round := range rounds {
		t.Run("", func(t *testing.T) { kill9Round(t, int64(round)) })
	}
}

const (
	killWorkers  = 4
	settleWithin = 30 * time.Second
)

func kill9Round(t *testing.T, round int64) {
	c := newCluster(t)
	rng := rand.New(rand.NewSource(1000 + round))
	l := newLoad(c, "k9/app", rng)
	stop := l.run(killWorkers, 100*round)
	time.Sleep(time.Duration(1500+rng.Intn(1500)) * time.Millisecond) // load before the kill
	victim := rng.Intn(replicas)
	c.replicas[victim].Kill()
	killed := time.Now()
	// Load goes on while haproxy's health check finds the replica gone
	// (two failed checks a second apart) and after.
	time.Sleep(3 * time.Second)
	stop()
	t.Logf("round %d: killed replica %d; %s", round, victim, l.summary())
	l.check(t)

	took, rep := c.waitClean(killed, settleWithin)
	t.Logf("round %d: fsck clean %v after the kill (pending leases to sweep: %d)", round, took.Round(100*time.Millisecond), len(rep.Pending))
	pulled := l.verify(t)
	t.Logf("round %d: %d tags pulled byte for byte, %d absent as acknowledged", round, pulled, len(l.tags)-pulled)
	l.check(t)
	// What nothing names, younger than fsck's grace, for the record.
	if young, err := c.fsckJSON("--orphan-grace", "1s"); err == nil {
		t.Logf("round %d: objects nothing names younger than fsck's grace: %d", round, len(young.Problems))
	}
}
