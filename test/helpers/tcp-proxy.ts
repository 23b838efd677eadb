// A TCP proxy for fault injection: forwards to a real service until told to go down, then
// drops every open connection and refuses new ones, like a crashed server or a partition.
import { createServer, connect, type Socket, type Server } from 'node:net'

export interface TcpProxy {
  port: number
  down: () => void
  up: () => void
  close: () => Promise<void>
}

export async function tcpProxy (targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let available = true
  const server: Server = createServer((client) => {
    if (!available) { client.destroy(); return }
    const upstream = connect(targetPort, targetHost)
    sockets.add(client)
    sockets.add(upstream)
    const drop = (): void => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    down () {
      available = false
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
    up () { available = true },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  }
}
