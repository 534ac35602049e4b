import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/mailmesh.ts';
import type { ControlPlaneDefinition } from './generated/mailmesh/v1/ControlPlane.ts';

/** Absolute path of the contract. */
export const PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), 'mailmesh.proto');

/** proto-loader options; they match the generator options in api/generate.ts so the generated
 * types describe the runtime objects (int64 as strings, defaults filled). */
export const LOADER_OPTIONS = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true } as const;

let cached: ProtoGrpcType | undefined;

/** The loaded contract (parsed once per process). */
export function loadProto(): ProtoGrpcType {
  cached ??= grpc.loadPackageDefinition(loadSync(PROTO_PATH, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return cached;
}

/** The ControlPlane service definition. */
export function controlPlaneService(): ControlPlaneDefinition {
  return loadProto().mailmesh.v1.ControlPlane.service;
}

/** Channel options both sides use: snapshots of big user directories exceed gRPC's 4 MiB default. */
export const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;
