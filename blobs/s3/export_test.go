package s3

// NewTestDriver is newDriver for the tests outside the package.
var NewTestDriver = newDriver
