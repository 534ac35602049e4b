import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { checkControlPlanePod, checkMailPod, checkNetworkPolicies, checkReferences, checkSelectors, checkSidecarConfigFormat, checkSnippetPorts, podTemplates, type ControlPlaneConfigDoc } from './lib/checks.ts';
import { parseDovecotConf } from './lib/conf-parsers.ts';
import { internalsSidecarConfig, rendered, renderSidecarConfig, sidecarTemplate, snippets } from './lib/fixtures.ts';
import { clone, type K8sObject } from './lib/yaml-docs.ts';

const s = snippets();
const base = () => rendered().base;
const cfgOf = (objs: K8sObject[], cm = 'mailmesh-sidecar') => renderSidecarConfig(sidecarTemplate(objs, cm), 'shard-1', 'mail-0');
const mailPods = (objs: K8sObject[]) => podTemplates(objs).find((p) => p.workload.kind === 'StatefulSet')!;
const hostPortOf = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1));

/** The control plane's config file text, as its ConfigMap ships it. */
const cpConfigText = (objs: K8sObject[]) => (objs.find((o) => o.metadata.name === 'mailmesh-control-plane' && o.kind === 'ConfigMap')!.data as Record<string, string>)['control-plane.yaml'];
const cpCfgOf = (objs: K8sObject[]) => parse(cpConfigText(objs)) as ControlPlaneConfigDoc;
const cpPods = (objs: K8sObject[]) => podTemplates(objs).find((p) => p.workload.kind === 'Deployment' && p.workload.metadata.name === 'mailmesh-control-plane')!;

/** Network check options derived from the configs, not repeated by hand. */
function netOpts(objs: K8sObject[]) {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('mailmesh-sidecar'))!.metadata.name;
  const cfg = cfgOf(objs, cm);
  const cp = cpCfgOf(objs);
  return {
    meshLabel: { 'mailmesh.io/mesh-sidecar': 'true' },
    meshPort: hostPortOf(cfg.listen.mesh),
    controlPlanePort: hostPortOf(cp.listen),
    publicPorts: ['smtp', 'imap', 'imaps', 'pop3', 'pop3s'].map((k) => hostPortOf(cfg.listen[k])),
    scrape: { namespace: { 'kubernetes.io/metadata.name': 'monitoring' }, sidecarPort: hostPortOf(cfg.listen.metrics), controlPlanePort: hostPortOf(cp.metrics!) },
  };
}

test('sidecar ConfigMap follows the docs/internals.md format', () => {
  const ref = internalsSidecarConfig();
  assert.deepEqual(checkSidecarConfigFormat(cfgOf(base()), ref), []);
  // The documented ports are the ones deployed (a drift here means internals.md or the manifests are stale).
  assert.deepEqual(cfgOf(base()).listen, ref.listen);
  const { maildir: _embeddedOnly, ...backends } = ref.backends;
  assert.deepEqual(cfgOf(base()).backends, backends);
});

test('format check catches unknown and missing keys', () => {
  const ref = internalsSidecarConfig();
  const extra = { ...cfgOf(base()), metricsPort: 9464 };
  assert.match(checkSidecarConfigFormat(extra, ref).join(), /"metricsPort" is not in docs\/internals.md/);
  const noFilter = cfgOf(base());
  delete noFilter.listen.filter;
  assert.match(checkSidecarConfigFormat(noFilter, ref).join(), /listen.filter missing/);
  const noLmtp = cfgOf(base());
  delete noLmtp.backends.lmtp;
  assert.match(checkSidecarConfigFormat(noLmtp, ref).join(), /backends.lmtp missing/);
});

test('the rendered sidecar config loads with the sidecar\'s own loader', async (t) => {
  const mod = await import('../../sidecar/config.ts').catch(() => undefined);
  if (!mod?.loadSidecarConfig) {
    t.skip('sidecar/config.ts (loadSidecarConfig) not available yet');
    return;
  }
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-sidecar-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [shard, pod, cm] of [['tokyo-1', 'mail-tokyo-1-0', 'mailmesh-sidecar-tokyo-1'], ['frankfurt-1', 'mail-frankfurt-1-0', 'mailmesh-sidecar-frankfurt-1']]) {
    const file = join(dir, `${shard}.yaml`);
    await writeFile(file, sidecarTemplate(rendered().twoRegions, cm).replaceAll('@SHARD@', shard).replaceAll('@POD_NAME@', pod));
    const cfg = mod.loadSidecarConfig(file);
    assert.equal(cfg.shard, shard);
    assert.equal(cfg.node, pod);
    assert.equal(cfg.joinTokenFile, `/run/secrets/mailmesh/join-tokens/${pod}`);
  }
});

test('Postfix and Dovecot snippets use the sidecar\'s ports and TLS files', () => {
  assert.deepEqual(checkSnippetPorts(cfgOf(base()), s), []);
});

test('snippet port check catches each broken copy', () => {
  const cfg = cfgOf(base());
  const run = (over: Partial<typeof s>, c = cfg) => checkSnippetPorts(c, { ...s, ...over }).join('\n');
  assert.match(run({ mainCf: s.mainCf.replace('127.0.0.1:10040:transport', '127.0.0.1:10041:transport') }), /transport_maps/);
  assert.match(run({ mainCf: s.mainCf.replace('10040:recipients', '10040:recipient') }), /relay_recipient_maps/);
  assert.match(run({ mainCf: s.mainCf.replace('[127.0.0.1]:10026', '[127.0.0.1]:10027') }), /content_filter/);
  assert.match(run({ masterCf: s.masterCf.replace('127.0.0.1:10025 inet', '127.0.0.1:10052 inet') }), /no smtpd on 127.0.0.1:10025/);
  assert.match(run({ masterCf: s.masterCf.replace('  -o content_filter=\n', '') }), /must clear content_filter/);
  assert.match(run({ masterCf: s.masterCf.replace('mailmesh-filter unix', 'mailmesh-filtr unix') }), /no "mailmesh-filter unix/);
  assert.match(run({ dovecot: parseDovecotConf(s.dovecotText.replace('port = 24', 'port = 2424')) }), /lmtp\/lmtp listens on 127.0.0.1:2424/);
  assert.match(run({ dovecot: parseDovecotConf(s.dovecotText.replace('port = 1143', 'port = 143')) }), /imap-login\/imap/);
  assert.match(run({ dovecot: parseDovecotConf(s.dovecotText.replace('port = 1110', 'port = 110')) }), /pop3-login\/pop3/);
  assert.match(run({ dovecot: parseDovecotConf(s.dovecotText.replace('login_trusted_networks = 127.0.0.1/32', 'login_trusted_networks = 10.0.0.0/8')) }), /login_trusted_networks/);
  assert.match(run({ dovecot: parseDovecotConf(s.dovecotText.replace('</etc/mailmesh/tls/node.key', '</etc/dovecot/private/node.key')) }), /dovecot ssl_key/);
  assert.match(run({ mainCf: s.mainCf.replace('smtpd_tls_cert_file = /etc/mailmesh/tls/', 'smtpd_tls_cert_file = /etc/ssl/') }), /smtpd_tls_cert_file/);
  assert.match(run({}, { ...cfg, backends: { ...cfg.backends, lmtp: '127.0.0.1:2424' } }), /backends.lmtp/);
  // Re-injection on a Unix socket: the unix smtpd service of that name, with the same settings.
  const viaSocket = { ...cfg, backends: { ...cfg.backends, postfix: 'unix:/var/spool/postfix/private/reinject' } };
  const unixReinject = s.masterCf.replace('127.0.0.1:10025 inet n  -       n       -       -       smtpd', 'reinject unix -  -       n       -       -       smtpd');
  assert.notEqual(unixReinject, s.masterCf, 'the fixture has the TCP re-injection line');
  assert.equal(run({ masterCf: unixReinject }, viaSocket), '');
  assert.match(run({}, viaSocket), /no smtpd on unix:\/var\/spool\/postfix\/private\/reinject/);
  assert.match(run({ masterCf: unixReinject.replace('reinject unix', 'reinjekt unix') }, viaSocket), /no smtpd on unix:/);
});

test('mail pod: shared TLS volume, ports, probes, config paths and entrypoints agree', () => {
  const objs = base();
  assert.deepEqual(checkMailPod(mailPods(objs), cfgOf(objs), s.entrypoints), []);
  for (const p of podTemplates(rendered().twoRegions).filter((x) => x.workload.kind === 'StatefulSet')) {
    const shard = p.labels['mailmesh.io/shard'];
    const cfg = renderSidecarConfig(sidecarTemplate(rendered().twoRegions, `mailmesh-sidecar-${shard}`), shard, `${p.workload.metadata.name}-0`);
    assert.deepEqual(checkMailPod(p, cfg, s.entrypoints), []);
  }
});

test('mail pod check catches each broken copy', () => {
  const objs = base();
  const cfg = cfgOf(objs);
  type C = { name: string; volumeMounts: { name: string; mountPath: string }[]; ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet?: { path: string; port: unknown }; tcpSocket?: { port: unknown } }; livenessProbe: { httpGet: { path: string; port: unknown } }; args: string[]; env: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[] };
  const mutate = (f: (cs: Record<string, C>, spec: { volumes: { name: string; emptyDir?: unknown }[]; initContainers: C[]; containers: C[] }, labels: Record<string, string>) => void) => {
    const p = clone(mailPods(objs));
    const cs = Object.fromEntries((p.spec.containers as unknown as C[]).map((c) => [c.name, c]));
    f(cs, p.spec as never, p.labels);
    return checkMailPod(p, cfg, s.entrypoints).join('\n');
  };
  assert.match(mutate((cs) => { cs.dovecot.volumeMounts.find((m) => m.name === 'tls')!.mountPath = '/etc/dovecot/tls'; }), /tlsDir \/etc\/mailmesh\/tls must be mounted/);
  assert.match(mutate((cs, spec) => { spec.volumes.push({ name: 'tls2', emptyDir: {} }); cs.postfix.volumeMounts.find((m) => m.name === 'tls')!.name = 'tls2'; }), /different volumes/);
  assert.match(mutate((_cs, spec) => { delete spec.volumes.find((v) => v.name === 'tls')!.emptyDir; }), /emptyDir/);
  assert.match(mutate((cs) => { cs.sidecar.ports = cs.sidecar.ports.filter((p) => p.name !== 'mesh'); }), /mesh 0.0.0.0:8443 but declares no containerPort 8443/);
  assert.match(mutate((cs) => { cs.sidecar.readinessProbe.httpGet!.path = '/healthz'; }), /readinessProbe path \/healthz, expected \/readyz/);
  assert.match(mutate((cs) => { cs.sidecar.livenessProbe.httpGet.port = 8443; }), /livenessProbe port 8443 is not listen.metrics 9464/);
  assert.match(mutate((cs) => { cs.sidecar.ports.find((p) => p.name === 'metrics')!.containerPort = 9100; }), /readinessProbe port metrics is not listen.metrics|no containerPort 9464/);
  assert.match(mutate((cs) => { cs.dovecot.readinessProbe.tcpSocket!.port = 1143; }), /dovecot readiness probe port 1143/);
  assert.match(mutate((cs) => { cs.sidecar.volumeMounts = cs.sidecar.volumeMounts.filter((m) => m.name !== 'state'); }), /\/var\/lib\/mailmesh is on no volume mount/);
  assert.match(mutate((cs) => { cs.sidecar.volumeMounts = cs.sidecar.volumeMounts.filter((m) => m.name !== 'join-tokens'); }), /join-tokens\/mail-0 is on no volume mount/);
  assert.match(mutate((cs) => { cs.sidecar.args = ['sidecar', '--config', '/etc/mailmesh/sidecar.yaml']; }), /render-config does not write/);
  assert.match(mutate((_cs, _spec, labels) => { delete labels['mailmesh.io/shard']; }), /reads pod label mailmesh.io\/shard/);
  assert.match(mutate((cs) => { cs.postfix.volumeMounts.find((m) => m.name === 'postfix-config')!.mountPath = '/etc/postfix/mailmesh'; }), /postfix entrypoint does not read/);
  assert.match(mutate((_cs, spec) => { spec.containers = spec.containers.filter((c) => c.name !== 'dovecot'); }), /needs containers sidecar, postfix and dovecot/);
});

test('control-plane pod: config listen and metrics ports, container ports and HTTP probes agree', () => {
  for (const objs of [base(), rendered().twoRegions]) {
    const cfg = cpCfgOf(objs);
    assert.ok(cfg.metrics, 'the control-plane ConfigMap sets metrics');
    assert.deepEqual(checkControlPlanePod(cpPods(objs), cfg), []);
  }
  // The sidecar and the control plane serve health on the same port, so one image HEALTHCHECK
  // default (MAILMESH_HEALTH_PORT, test/deploy/dockerfile.test.ts) fits both.
  assert.equal(hostPortOf(cpCfgOf(base()).metrics!), hostPortOf(cfgOf(base()).listen.metrics));
});

test('the control-plane ConfigMap loads with the control plane\'s own config parser', async (t) => {
  const mod = await import('../../control-plane/config.ts').catch(() => undefined);
  if (!mod?.parseConfig) {
    t.skip('control-plane/config.ts (parseConfig) not available');
    return;
  }
  const cfg = mod.parseConfig(parse(cpConfigText(base())), '/', 'control-plane.yaml');
  assert.equal(cfg.metrics, '0.0.0.0:9464');
  assert.equal(cfg.listen, '0.0.0.0:7443');
  assert.equal(cfg.caDir, '/etc/mailmesh/ca');
});

test('control-plane pod check catches each broken copy', () => {
  const objs = base();
  type C = { name: string; ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet?: { path: string; port: unknown }; tcpSocket?: { port: unknown } }; livenessProbe: { httpGet?: { path: string; port: unknown }; tcpSocket?: { port: unknown } } };
  const run = (f: (c: C) => void, cfgOver: Partial<ControlPlaneConfigDoc> = {}) => {
    const p = clone(cpPods(objs));
    f((p.spec.containers as unknown as C[]).find((c) => c.name === 'control-plane')!);
    return checkControlPlanePod(p, { ...cpCfgOf(objs), ...cfgOver }).join('\n');
  };
  const none = () => {};
  // The config moves the metrics port but the Deployment does not follow.
  assert.match(run(none, { metrics: '0.0.0.0:9465' }), /serves metrics on 9465 but declares no containerPort 9465/);
  assert.match(run(none, { metrics: '0.0.0.0:9465' }), /livenessProbe port metrics is not metrics 9465/);
  assert.match(run(none, { metrics: '0.0.0.0:9465' }), /readinessProbe port metrics is not metrics 9465/);
  assert.match(run(none, { metrics: undefined }), /no "metrics" address/);
  assert.match(run(none, { metrics: '127.0.0.1:9464' }), /loopback only/);
  assert.match(run(none, { metrics: '0.0.0.0:7443' }), /share port 7443/);
  assert.match(run(none, { listen: '0.0.0.0:7444' }), /listens on 0.0.0.0:7444 but declares no containerPort 7444/);
  // The Deployment changes and the config does not.
  assert.match(run((c) => { c.ports.find((p) => p.name === 'metrics')!.containerPort = 9100; }), /no containerPort 9464/);
  assert.match(run((c) => { c.readinessProbe.httpGet!.path = '/healthz'; }), /readinessProbe path \/healthz, expected \/readyz/);
  assert.match(run((c) => { c.livenessProbe = { tcpSocket: { port: 'grpc' } }; }), /livenessProbe must be an httpGet on \/healthz/);
  assert.match(run((c) => { c.readinessProbe.httpGet!.port = 'grpc'; }), /readinessProbe port grpc is not metrics 9464/);
  assert.match(run((c) => { c.name = 'cp'; }), /needs a container named control-plane/);
});

test('references resolve and no Secret is kept in the manifests', () => {
  assert.deepEqual(checkReferences(base()), []);
  assert.deepEqual(checkReferences(rendered().twoRegions), []);
});

test('reference check catches each broken copy', () => {
  const objs = base();
  const without = (kind: string, name: string) => objs.filter((o) => !(o.kind === kind && o.metadata.name === name));
  assert.match(checkReferences(without('ConfigMap', 'mailmesh-postfix')).join(), /refers to ConfigMap\/mailmesh-postfix/);
  assert.match(checkReferences(without('ServiceAccount', 'mailmesh-control-plane')).join(), /ServiceAccount\/mailmesh-control-plane/);
  assert.match(checkReferences(without('PersistentVolumeClaim', 'mailmesh-control-plane-state')).join(), /PersistentVolumeClaim/);
  assert.match(checkReferences(without('Service', 'mail')).join(), /serviceName mail must be a headless Service/);
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'mailmesh-ca' }, data: { 'issuer.key': 'Li4u' } } as K8sObject;
  assert.match(checkReferences([...objs, secret]).join(), /secrets must not be kept in the manifests/);
  const p = clone(objs);
  const sts = p.find((o) => o.kind === 'StatefulSet') as { spec: { template: { spec: { containers: { volumeMounts: { name: string }[] }[] } } } } & K8sObject;
  sts.spec.template.spec.containers[0].volumeMounts[0].name = 'nope';
  assert.match(checkReferences(p).join(), /mounts unknown volume nope/);
});

test('selectors match pod labels (base and overlay)', () => {
  assert.deepEqual(checkSelectors(base()), []);
  assert.deepEqual(checkSelectors(rendered().twoRegions), []);
});

test('selector check catches each broken copy', () => {
  const objs = rendered().twoRegions;
  const find = (o: K8sObject[], kind: string, name: string) => o.find((x) => x.kind === kind && x.metadata.name === name) as K8sObject & { spec: unknown };
  let c = clone(objs);
  (find(c, 'Service', 'mail-tokyo-1').spec as { selector: Record<string, string> }).selector['mailmesh.io/shard'] = 'tokyo1';
  assert.match(checkSelectors(c).join(), /Service\/mail-tokyo-1: selector matches no pods/);
  c = clone(objs);
  delete (find(c, 'Service', 'mail-tokyo-1').spec as { selector: Record<string, string> }).selector['mailmesh.io/shard'];
  assert.match(checkSelectors(c).join(), /headless Service selects pods of 2 workloads/);
  c = clone(objs);
  delete (find(c, 'PodDisruptionBudget', 'mail-frankfurt-1').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels['mailmesh.io/shard'];
  assert.match(checkSelectors(c).join(), /PodDisruptionBudget\/mail-frankfurt-1: selects pods of 2 workloads/);
  c = clone(objs);
  (find(c, 'StatefulSet', 'mail-tokyo-1').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels['mailmesh.io/shard'] = 'frankfurt-1';
  assert.match(checkSelectors(c).join(), /StatefulSet\/mail-tokyo-1: selector does not match/);
  c = clone(objs);
  (find(c, 'Service', 'mailmesh-public').spec as { ports: { targetPort: string }[] }).ports[0].targetPort = 'smtps';
  assert.match(checkSelectors(c).join(), /targetPort smtps/);
});

test('network policies: mesh port only from mesh pods, control plane only from mesh pods, public ports open, metrics from monitoring', () => {
  assert.deepEqual(checkNetworkPolicies(base(), netOpts(base())), []);
  assert.deepEqual(checkNetworkPolicies(rendered().twoRegions, netOpts(rendered().twoRegions)), []);
});

test('network policy check catches each broken copy', () => {
  const objs = base();
  const opts = netOpts(objs);
  type Pol = K8sObject & { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { from?: Record<string, unknown>[]; ports?: { port: number }[] }[] } };
  const mutate = (name: string, f: (p: Pol) => void) => {
    const c = clone(objs);
    f(c.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === name) as Pol);
    return checkNetworkPolicies(c, opts).join('\n');
  };
  const meshRule = (p: Pol) => p.spec.ingress.find((r) => r.ports?.some((x) => x.port === 8443))!;
  assert.match(mutate('mailmesh-mail', (p) => { delete meshRule(p).from; }), /lets non-mesh peers reach port 8443/);
  assert.match(mutate('mailmesh-mail', (p) => { meshRule(p).from!.push({ ipBlock: { cidr: '0.0.0.0/0' } }); }), /lets non-mesh peers reach port 8443/);
  assert.match(mutate('mailmesh-mail', (p) => { meshRule(p).from = [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'mailmesh' } } }]; }), /non-mesh peers reach port 8443/);
  assert.match(mutate('mailmesh-mail', (p) => { meshRule(p).ports = [{ port: 8444 }]; }), /port 8443 is not allowed from mesh pods/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.ingress.push({ ports: [{ port: 8443 }] }); }), /non-mesh peers reach port 8443/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.ingress.push({}); }), /non-mesh peers reach port 8443/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.podSelector.matchLabels = { 'mailmesh.io/mesh-sidecar': 'yes' }; }), /StatefulSet\/mail: no NetworkPolicy/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.policyTypes = ['Egress']; }), /StatefulSet\/mail: no NetworkPolicy/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.ingress = p.spec.ingress.filter((r) => !r.ports?.some((x) => x.port === 25)); }), /public port 25 is not open/);
  assert.match(mutate('mailmesh-control-plane', (p) => { p.spec.ingress[0].from = [{ namespaceSelector: {} }]; }), /Deployment\/mailmesh-control-plane: NetworkPolicy mailmesh-control-plane lets non-mesh peers reach port 7443/);
  assert.match(mutate('mailmesh-control-plane', (p) => { p.spec.podSelector.matchLabels['app.kubernetes.io/component'] = 'cp'; }), /Deployment\/mailmesh-control-plane: no NetworkPolicy/);
  // Metrics: scrapeable from the monitoring namespace, by nobody else.
  const scrapeRule = (p: Pol) => p.spec.ingress.find((r) => r.ports?.some((x) => x.port === 9464))!;
  assert.match(mutate('mailmesh-control-plane', (p) => { p.spec.ingress = p.spec.ingress.filter((r) => r !== scrapeRule(p)); }), /Deployment\/mailmesh-control-plane: metrics port 9464 is not allowed from the monitoring namespace/);
  assert.match(mutate('mailmesh-control-plane', (p) => { delete scrapeRule(p).from; }), /Deployment\/mailmesh-control-plane: NetworkPolicy mailmesh-control-plane lets any peer reach metrics port 9464/);
  assert.match(mutate('mailmesh-control-plane', (p) => { scrapeRule(p).ports = [{ port: 9100 }]; }), /Deployment\/mailmesh-control-plane: metrics port 9464 is not allowed/);
  assert.match(mutate('mailmesh-mail', (p) => { scrapeRule(p).from = [{ namespaceSelector: {} }]; }), /StatefulSet\/mail: NetworkPolicy mailmesh-mail lets any peer reach metrics port 9464/);
  assert.match(mutate('mailmesh-mail', (p) => { p.spec.ingress.push({ ports: [{ port: 9464 }] }); }), /StatefulSet\/mail: NetworkPolicy mailmesh-mail lets any peer reach metrics port 9464/);
});
