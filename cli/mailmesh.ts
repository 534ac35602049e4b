#!/usr/bin/env node
// The `mailmesh` command. Runs on Node 24 (type stripping, no build step): `npx mailmesh`
// finds Node 24 from the `node` devDependency first on the PATH.
import { main } from './main.ts';

process.exitCode = await main(process.argv);
