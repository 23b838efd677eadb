// lib/peer.ts: optional peers are loaded on first use, and a missing one is named.
import t from 'tap'
import { requirePeer, importPeer, MissingPeerError } from '../../lib/peer.ts'
import { isStartupError } from '../../lib/startup-error.ts'

t.test('requirePeer loads an installed CommonJS package', async (t) => {
  const pg = requirePeer<{ Client: unknown }>('pg', 'a test')
  t.type(pg.Client, 'function')
})

t.test('a missing peer is a MissingPeerError naming it and what needs it', async (t) => {
  const err = t.throws(() => requirePeer('gatehouse-no-such-peer', 'gatehouse-store (a test)')) as MissingPeerError
  t.ok(err instanceof MissingPeerError)
  t.equal(err.peer, 'gatehouse-no-such-peer')
  t.ok(isStartupError(err, 'PEER_MISSING'), 'a coded start-up failure')
  t.match(err.message, /^gatehouse-store \(a test\) needs the package gatehouse-no-such-peer, which is not installed: run `npm install gatehouse-no-such-peer`/)
  const async = await importPeer('gatehouse-no-such-peer', 'a test', () => import('gatehouse-no-such-peer' as string)).catch((e: unknown) => e)
  t.ok(async instanceof MissingPeerError, `importPeer too (got ${String((async as { code?: string }).code)}: ${String((async as Error).message)})`)
  // Node's resolver words a missing package in more than one way; each is the peer's absence.
  for (const message of [
    "Cannot find package 'gatehouse-no-such-peer' imported from /app/index.js",
    "Cannot find module '/app/node_modules/gatehouse-no-such-peer/index.js' imported from /app/index.js"
  ]) {
    const raw = Object.assign(new Error(message), { code: 'ERR_MODULE_NOT_FOUND' })
    t.ok(await importPeer('gatehouse-no-such-peer', 'a test', async () => { throw raw }).catch((e: unknown) => e) instanceof MissingPeerError, message)
  }
  const uncoded = new Error("Cannot find package 'gatehouse-no-such-peer' imported from /app/index.js")
  t.ok(await importPeer('gatehouse-no-such-peer', 'a test', async () => { throw uncoded }).catch((e: unknown) => e) instanceof MissingPeerError, 'the same error rethrown by a loader hook without its code')
  const longer = Object.assign(new Error("Cannot find package 'gatehouse-no-such-peer-extra'"), { code: 'ERR_MODULE_NOT_FOUND' })
  t.equal(await importPeer('gatehouse-no-such-peer', 'a test', async () => { throw longer }).catch((e: unknown) => e), longer, 'a longer name is another package')
})

t.test('another module missing inside the loaded one is not blamed on the peer', async (t) => {
  const inner = Object.assign(new Error("Cannot find module 'something-else'"), { code: 'ERR_MODULE_NOT_FOUND' })
  const err = await importPeer('pg', 'a test', async () => { throw inner }).catch((e: unknown) => e)
  t.equal(err, inner, 'the original error passes through')
})
