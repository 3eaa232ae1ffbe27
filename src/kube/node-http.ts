// node:http without its ES module wrapper. `import http from 'node:http'`
// makes Node build a module namespace that reads every export once, and
// node:http's WebSocket, CloseEvent and MessageEvent are lazy getters:
// reading them loads undici (Node's fetch and WebSocket, ~760 KB of
// JavaScript) in every command that talks to a cluster: 2.6 MiB of heap and
// 3 MiB of a data command's peak RSS (issue 11: ≤ 100 MiB).
// process.getBuiltinModule (Node 22.3+) hands out the CommonJS exports as
// they are. Types come from `import type`, which costs nothing at run time.
export const http = process.getBuiltinModule('node:http');
