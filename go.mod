module github.com/voiced-dev/voiced

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.4-0.20250319132907-e064f32e3674
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/yalue/onnxruntime_go v1.9.0
)

require golang.org/x/net v0.26.0 // indirect
