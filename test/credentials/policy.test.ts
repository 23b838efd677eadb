// Password policy and email normalisation as plain functions (no database).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { checkPasswordPolicy, commonForm, exceedsMaxBytes, isPaddedCommon, isPredictableRun, loadCommonPasswords, normalizeEmail, type PasswordPolicy } from '../../plugins/credentials/policy.ts'
import { DEFAULT_COMMON_PASSWORDS_FILE, resolveOptions } from '../../plugins/credentials/options.ts'
import { isGatehouseError } from '../../lib/errors.ts'

const common = loadCommonPasswords(DEFAULT_COMMON_PASSWORDS_FILE)
const policy: PasswordPolicy = { minLength: 12, maxBytes: 1024, common }

function weak (password: unknown, context?: { email?: string }): string {
  try {
    checkPasswordPolicy(policy, password, context)
  } catch (err) {
    if (isGatehouseError(err) && err.code === 'WEAK_PASSWORD' && err.statusCode === 400) return err.message
    throw err
  }
  throw new Error('expected WEAK_PASSWORD')
}

t.test('the shipped list is real and large enough', async (t) => {
  const lines = readFileSync(DEFAULT_COMMON_PASSWORDS_FILE, 'utf8').split('\n').filter((l) => l !== '')
  t.ok(lines.length >= 10_000, `at least 10,000 entries (${lines.length})`)
  t.equal(lines[0], '123456', 'most common first')
  t.ok(common.size >= 10_000)
  t.ok(common.has('password'))
})

t.test('length is counted in code points after NFKC', async (t) => {
  t.match(weak('short pass'), /at least 12 characters/)
  // 11 astral characters are 22 UTF-16 units but 11 code points: too short.
  t.match(weak('😀'.repeat(11)), /at least 12 characters/)
  t.equal(checkPasswordPolicy(policy, '😀'.repeat(12)), '😀'.repeat(12))
  // NFKC folds the ligature 'ﬃ' (1 code point) into 'ffi' (3).
  t.equal(checkPasswordPolicy(policy, 'ﬃ'.repeat(4)), 'ffi'.repeat(4), 'returns the NFKC form')
  const configured = { ...policy, minLength: resolveOptions({ minPasswordLength: 16 }).minPasswordLength }
  t.throws(() => checkPasswordPolicy(configured, 'fifteen chars!!'), { code: 'WEAK_PASSWORD' })
})

t.test('the byte cap', async (t) => {
  t.match(weak('x'.repeat(2048)), /at most 1024 bytes/)
  t.match(weak('é'.repeat(513)), /at most 1024 bytes/, '513 two-byte characters are 1026 bytes')
  t.equal(checkPasswordPolicy(policy, 'q'.repeat(1024)).length, 1024, 'exactly 1024 bytes is accepted')
  t.equal(exceedsMaxBytes('a'.repeat(300), 1024), false)
  t.equal(exceedsMaxBytes('€'.repeat(342), 1024), true, '342 × 3 bytes')
})

t.test('common passwords, case-insensitive after NFKC', async (t) => {
  t.match(weak('password1234'), /common or breached/)
  t.match(weak('PassWord1234'), /common or breached/)
  t.match(weak('ＰＡＳＳＷＯＲＤ１２３４'), /common or breached/, 'full-width forms fold to ASCII under NFKC')
  t.match(weak('qwertyuiop123'), /common or breached/)
  t.equal(commonForm('ＡＢＣ'), 'abc')
})

t.test('no composition rules; long passphrases accepted', async (t) => {
  t.equal(checkPasswordPolicy(policy, 'correct horse battery staple'), 'correct horse battery staple')
  t.equal(checkPasswordPolicy(policy, 'aaaaaaaaaaaaaaaa'), 'aaaaaaaaaaaaaaaa', 'no character-class or repetition rules')
  const passphrase = 'Ünïcödé passphrase — 日本語のパスフレーズ — ελληνικά λόγια και emoji 🐎🔋📎!!'
  const normalized = passphrase.normalize('NFKC')
  t.ok([...normalized].length >= 64, `${[...normalized].length} code points`)
  t.equal(checkPasswordPolicy(policy, passphrase), normalized)
  const sixtyFour = 'ж'.repeat(32) + 'λ'.repeat(32)
  t.equal([...sixtyFour].length, 64)
  t.equal(checkPasswordPolicy(policy, sixtyFour), sixtyFour)
})

t.test('non-strings and the email itself', async (t) => {
  t.match(weak(undefined), /must be a string/)
  t.match(weak(12345678901234), /must be a string/)
  t.match(weak('Alice@Example.com', { email: 'alice@example.com' }), /email address/)
})

t.test('email normalisation', async (t) => {
  t.equal(normalizeEmail('Alice@Example.COM'), 'alice@example.com')
  t.equal(normalizeEmail('  alice@example.com \n'), 'alice@example.com')
  t.equal(normalizeEmail('ａｌｉｃｅ@example.com'), 'alice@example.com', 'NFKC folds full-width letters')
})

t.test('options are validated and frozen', async (t) => {
  const o = resolveOptions()
  t.same(o.argon2, { memoryCost: 19456, timeCost: 2, parallelism: 1, outputLen: 32 })
  t.equal(o.minPasswordLength, 12)
  t.equal(o.maxPasswordBytes, 1024)
  t.equal(o.basicCacheTtlMs, 60_000)
  t.ok(Object.isFrozen(o) && Object.isFrozen(o.argon2))
  t.throws(() => resolveOptions({ minPasswordLength: 4 }), /minPasswordLength/)
  t.throws(() => resolveOptions({ argon2: { timeCost: 0 } }), /timeCost/)
  t.throws(() => resolveOptions({ maxPasswordBytes: 100 }), /maxPasswordBytes/)
  t.throws(() => resolveOptions({ apiKeyPrefix: 'GH!' }), /apiKeyPrefix/)
})

t.test('a listed password padded with a predictable run is as common as the word', async (t) => {
  for (const password of ['password123456789', 'Password987654321', 'iloveyou12345678', 'sunshine11111111', '123456789password']) {
    const err = (() => { try { checkPasswordPolicy(policy, password); return null } catch (e) { return e } })()
    t.ok(isGatehouseError(err) && err.code === 'WEAK_PASSWORD', `${password} is refused`)
    t.match((err as Error).message, /common password with a predictable sequence|list of common/, `${password}: the rule is named`)
  }
  for (const password of ['password8264913570', 'correct horse battery staple 2024', 'football2024!!!!x7', 'my dog ate 123456789 socks']) {
    t.doesNotThrow(() => checkPasswordPolicy(policy, password), `${password} is accepted (not a listed word plus a predictable run)`)
  }
  t.ok(isPredictableRun('123456789') && isPredictableRun('9876') && isPredictableRun('2024') && isPredictableRun('!!!!') && isPredictableRun('aaaa'))
  t.notOk(isPredictableRun('1') || isPredictableRun('8264913570') || isPredictableRun('1357') || isPredictableRun('ab'))
})
