server {
    listen 80;
    server_name b.example.com;
    location / { proxy_pass http://127.0.0.1:3002/; }
}
