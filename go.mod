module github.com/ietgo/ietd

go 1.26.8

require github.com/sirupsen/logrus v1.10.2

require golang.org/x/sys v0.50.0 // indirect
