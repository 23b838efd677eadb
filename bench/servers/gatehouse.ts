import { skip } from '../lib/server-kit.ts'
skip('Gatehouse plugins not available yet')
