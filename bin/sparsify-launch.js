#!/usr/bin/env node
import { launch } from '../dist/launch/index.js';

process.exitCode = await launch();
