module github.com/tornado-rs/tornado-rs/c_examples/go

go 1.19
