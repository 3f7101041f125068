package main
import (
 _ "github.com/yalue/onnxruntime_go"
 _ "github.com/gorilla/websocket"
 _ "github.com/pelletier/go-toml/v2"
 _ "golang.org/x/sync/errgroup"
)
