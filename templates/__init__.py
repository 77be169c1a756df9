"""The starter set of email templates, as plain files: ``<language>/<kind>.txt``.

Each file is ``Name:`` and ``Subject:`` header lines, an empty line, then the body, in the
placeholder syntax of design/placeholders.md. ``<language>/rejection_reasons.txt`` holds the
starter rejection reasons, one a line. A new company with the templates add-on gets an
editable copy of these (core.services.starter); without it, interview updates and
cancellations are written from them. This folder is a package only so that an installed
service finds the files (importlib.resources); it holds no code.
"""
