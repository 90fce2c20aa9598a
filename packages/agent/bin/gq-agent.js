#!/usr/bin/env node
// The start-up bundle when it is fresh, else the compiled dist/ (@gq/common/start-entry says which).
import { startEntry } from '@gq/common/start-entry';
await import(startEntry(import.meta.url));
