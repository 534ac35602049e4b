import type { Duplex } from 'node:stream';
import { lmtpDeliver, startDovecot, type DovecotInstance } from '../helpers/dovecot.ts';
import type { BackendTarget, MailProtocol, RouteResult } from '../../sidecar/proxy/types.ts';
import { makeTestPki, startTlsSplice, tcpConnect, type TestPki } from './fixtures.ts';

/** Users of the two-shard test world. */
export const ALICE = { address: 'alice@mail.test', password: 'alice-secret' };
export const BOB = { address: 'bob@mail.test', password: 'bob secret "quoted"' };

/** Two Dovecots as two shards: alice lives on the local one, bob on the remote one behind a TLS splice. */
export interface TwoShards {
  local: DovecotInstance;
  remote: DovecotInstance;
  pki: TestPki;
  placement: Map<string, RouteResult>;
  route(login: string): RouteResult;
  connectBackend(target: BackendTarget, protocol: MailProtocol): Promise<Duplex>;
  /** Backend connections opened so far. */
  backendConnections: number;
  deliver(address: string, subject: string, body?: string): Promise<void>;
  stop(): Promise<void>;
}

/** Start the two-shard world (real Dovecot 2.3, trusting 127.0.0.1 as the proxy source). */
export async function startTwoShards(): Promise<TwoShards> {
  const pki = makeTestPki();
  const common = {
    users: [ALICE, BOB],
    loginTrustedNetworks: ['127.0.0.1/32'],
    // Failure delays are the proxy's job (failureDelay); keep the backend's own short for fast tests.
    extraConf: 'auth_failure_delay = 0\n',
  };
  const local = await startDovecot(common);
  const remote = await startDovecot(common);
  const imapSplice = await startTlsSplice(pki, remote.imapPort);
  const pop3Splice = await startTlsSplice(pki, remote.pop3Port);
  const placement = new Map<string, RouteResult>([
    [ALICE.address, { kind: 'local' }],
    [BOB.address, { kind: 'remote', shardId: 'osaka-1' }],
  ]);
  const world: TwoShards = {
    local,
    remote,
    pki,
    placement,
    backendConnections: 0,
    route: (login) => placement.get(login.toLowerCase()) ?? { kind: 'unknown' },
    connectBackend: async (target, protocol) => {
      world.backendConnections++;
      if (target.kind === 'local') return tcpConnect(protocol === 'imap' ? local.imapPort : local.pop3Port);
      if (target.shardId !== 'osaka-1') throw new Error(`no such shard ${target.shardId}`);
      return protocol === 'imap' ? imapSplice.connect() : pop3Splice.connect();
    },
    deliver: async (address, subject, body = 'hello') => {
      const dc = placement.get(address)?.kind === 'remote' ? remote : local;
      await lmtpDeliver(dc.lmtpPort, 'sender@example.org', [address], `From: sender@example.org\r\nTo: ${address}\r\nSubject: ${subject}\r\n\r\n${body}\r\n`);
    },
    stop: async () => {
      await imapSplice.close();
      await pop3Splice.close();
      await local.destroy();
      await remote.destroy();
      pki.cleanup();
    },
  };
  return world;
}
