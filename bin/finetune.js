#!/usr/bin/env node
// The built entry lives in dist/ (npm install runs `prepare`, which compiles src/).
import { main } from "../dist/index.js";

main(process.argv);
