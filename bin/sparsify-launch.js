#!/usr/bin/env node
import { launch } from '../dist/dist/launch.js';

process.exitCode = await launch();
