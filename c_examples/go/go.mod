module tornado_rs.example/go

go 1.19
