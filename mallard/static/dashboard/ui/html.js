// The vendored Preact, its hooks and HTM bound to it: every module imports its UI pieces from here.
export { h, render, Component, createContext } from '../vendor/preact.module.js';
export { useState, useEffect, useRef, useContext } from '../vendor/hooks.module.js';
import { h } from '../vendor/preact.module.js';
import htm from '../vendor/htm.module.js';

export const html = htm.bind(h);
