package authstore

import (
	"errors"

	"github.com/kvreg/kvreg/api/auth"
)

var (
	// ErrRobotExists: a robot of that name exists (revoked ones too: a
	// name is never reused, so that a leaked secret of the old one cannot
	// be mistaken for the new one's in logs).
	ErrRobotExists = errors.New("robot exists")
	// ErrRobotUnknown: no robot of that name (auth's sentinel).
	ErrRobotUnknown = auth.ErrRobotUnknown
)
